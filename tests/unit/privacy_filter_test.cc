// The privacy filter: what the defaults drop and hash, configured rules,
// bad rules reported together, and the drop list applied to rejected JSON.
#include "profiled/privacy/privacy_filter.h"

#include "profiled/identity/identity_rules.h"
#include "support/test_support.h"

namespace profiled::privacy {
namespace {

v1::InteractionEvent EventWith(std::initializer_list<std::pair<const char*, const char*>> traits,
                               std::initializer_list<std::pair<const char*, const char*>> props) {
  v1::InteractionEvent e = testing::MakeEvent("e1", "identify", 1'700'000'000'000, "u1");
  e.mutable_context()->set_ip("203.0.113.9");
  e.mutable_context()->set_user_agent("Mozilla/5.0");
  e.mutable_context()->set_session_id("s-1");
  for (const auto& [k, v] : traits) (*e.mutable_traits())[k] = v;
  for (const auto& [k, v] : props) (*e.mutable_properties())[k] = v;
  return e;
}

TEST_CASE("the default filter drops the ip and secrets and hashes contact details", "[privacy]") {
  auto filter = PrivacyFilter::Create({});
  REQUIRE_OK(filter.status());
  v1::InteractionEvent e = EventWith({{"password", "hunter2"},
                                      {"api_token", "t0k"},
                                      {"email", " Jane@Example.com "},
                                      {"phone", "+49 30 1234"},
                                      {"plan", "gold"},
                                      {"passenger_count", "2"}},
                                     {{"card_number", "4111111111111111"},
                                      {"user_password", "x"},
                                      {"CVV", "123"},
                                      {"color", "red"}});
  const PrivacyFilter::Counts n = filter->Apply(e);
  CHECK(n.dropped == 6);  // ip, password, api_token, card_number, user_password, CVV
  CHECK(e.context().ip().empty());
  CHECK(e.context().user_agent() == "Mozilla/5.0");
  CHECK(e.traits().count("password") == 0);
  CHECK(e.traits().count("api_token") == 0);
  CHECK(e.properties().count("card_number") == 0);
  CHECK(e.properties().count("user_password") == 0);
  CHECK(e.properties().count("CVV") == 0);  // patterns ignore case
  // Hashed like the email identity, so the two can be joined.
  CHECK(n.hashed == 2);
  CHECK(e.traits().at("email") == identity::EmailSha256("jane@example.com"));
  CHECK(e.traits().at("phone") == HashedValue("+49 30 1234"));
  CHECK(e.traits().at("phone").size() == 64);
  CHECK(e.traits().at("plan") == "gold");
  CHECK(e.traits().at("passenger_count") == "2");  // "pass" alone is no password
  CHECK(e.properties().at("color") == "red");
}

TEST_CASE("configured fields are dropped or hashed by their envelope path", "[privacy]") {
  PrivacyOptions options;
  options.drop_fields = {"context.user_agent", "traits.plan", "properties.color"};
  options.drop_key_patterns = {};
  options.hash_fields = {"context.session_id", "context.ip"};
  options.hash_key_patterns = {};
  auto filter = PrivacyFilter::Create(options);
  REQUIRE_OK(filter.status());
  v1::InteractionEvent e = EventWith({{"plan", "gold"}, {"password", "kept"}}, {{"color", "red"}});
  const PrivacyFilter::Counts n = filter->Apply(e);
  CHECK(n.dropped == 3);
  CHECK(n.hashed == 2);
  CHECK(e.context().user_agent().empty());
  CHECK(e.context().session_id() == HashedValue("s-1"));
  CHECK(e.context().ip() == HashedValue("203.0.113.9"));
  CHECK(e.traits().count("plan") == 0);
  CHECK(e.traits().at("password") == "kept");  // no patterns configured
  CHECK(e.properties().count("color") == 0);
}

TEST_CASE("every bad privacy rule is reported at once", "[privacy]") {
  PrivacyOptions options;
  options.drop_fields = {"context.shoe_size", "traits", "identities.email"};
  options.hash_key_patterns = {"(unclosed"};
  auto filter = PrivacyFilter::Create(options);
  REQUIRE_FALSE(filter.ok());
  const std::string msg(filter.status().message());
  CHECK_THAT(msg, Catch::Matchers::Contains("drop_fields: 'context.shoe_size'"));
  CHECK_THAT(msg, Catch::Matchers::Contains("drop_fields: 'traits'"));
  CHECK_THAT(msg, Catch::Matchers::Contains("drop_fields: 'identities.email'"));
  CHECK_THAT(msg, Catch::Matchers::Contains("hash_key_patterns: '(unclosed'"));
}

TEST_CASE("the drop list applied to rejected JSON removes dropped members at any depth",
          "[privacy]") {
  auto filter = PrivacyFilter::Create({});
  REQUIRE_OK(filter.status());
  const std::string rejected = R"({"batch":[{"type":"teleport","userId":"u",
    "context":{"ip":"203.0.113.9","locale":"de-DE"},
    "properties":{"card_number":"4111","nested":{"password":"p","ok":[1,{"secret":2}]},
      "quote\"key":"tab\there"},
    "traits":{"email":"jane@example.com"}}],"sentAt":"2024-03-01T10:00:00Z"})";
  std::optional<std::string> clean = filter->RedactJson(rejected);
  REQUIRE(clean.has_value());
  // Hashed fields stay as sent: a dead letter is fixed and re-driven, then filtered.
  CHECK(*clean == R"({"batch":[{"type":"teleport","userId":"u","context":{"locale":"de-DE"},)"
                  R"("properties":{"nested":{"ok":[1,{}]},"quote\"key":"tab\there"},)"
                  R"("traits":{"email":"jane@example.com"}}],"sentAt":"2024-03-01T10:00:00Z"})");
  CHECK_FALSE(
      filter->RedactJson(R"({"type":"track","userId":"u"})").has_value());        // nothing to drop
  CHECK_FALSE(filter->RedactJson(R"({"type":"track","password":)").has_value());  // not JSON
  CHECK_FALSE(filter->RedactJson("").has_value());
}

}  // namespace
}  // namespace profiled::privacy
