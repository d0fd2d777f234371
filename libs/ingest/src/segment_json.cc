#include "profiled/ingest/segment_json.h"
#include "profiled/ingest/event_decoder.h"

#include <simdjson.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "profiled/core/event_types.h"
#include "simdjson_util.h"

namespace profiled::ingest {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

// Thrown inside the decoder only, caught in Decode: turns deep field checks
// into one rejection without threading a status through every helper.
struct Reject {
  RejectReason reason;
  std::string detail;
};

using internal::A;
using internal::AsArray;
using internal::AsObject;

class MessageReader {
 public:
  MessageReader(object message, const SegmentOptions& options, std::optional<int64_t> batch_sent_at)
      : m_(message), options_(options), batch_sent_at_(batch_sent_at) {}

  v1::InteractionEvent Read() {
    v1::InteractionEvent e;
    const std::string type = String(m_, "type", "type");
    if (type.empty()) throw Reject{RejectReason::kMissingType, "type is required"};
    e.set_event_id(String(m_, "messageId", "messageId"));
    if (type == "track") {
      const std::string name = String(m_, "event", "event");
      if (name.empty()) throw Reject{RejectReason::kMissingType, "track without an event name"};
      e.set_type(SegmentEventType(name));
    } else if (type == "page") {
      e.set_type(std::string(core::EventTypeName(core::EventType::kPageViewed)));
    } else if (type == "screen") {
      e.set_type("screen_viewed");
    } else if (type == "identify" || type == "alias" || type == "group") {
      e.set_type(type);
    } else {
      throw Reject{RejectReason::kUnsupportedType, absl::StrCat("unsupported type '", type, "'")};
    }
    e.set_event_time_ms(EventTime());

    v1::Identities* ids = e.mutable_identities();
    ids->set_user_id(String(m_, "userId", "userId"));
    ids->set_anonymous_id(String(m_, "anonymousId", "anonymousId"));
    if (type == "alias") e.set_previous_id(String(m_, "previousId", "previousId"));

    std::optional<object> context = Object(m_, "context", "context");
    e.set_channel(options_.default_channel);
    if (context) ReadContext(*context, e);
    if (std::optional<object> traits = Object(m_, "traits", "traits")) {
      ReadMap(*traits, "traits", *e.mutable_traits());
      if (auto it = e.traits().find("email"); it != e.traits().end() && ids->email().empty()) {
        ids->set_email(it->second);
      }
    }
    if (std::optional<object> props = Object(m_, "properties", "properties")) {
      ReadMap(*props, "properties", *e.mutable_properties());
      ReadCommerce(*props, *e.mutable_commerce());
      if (std::optional<element> products = Field(*props, "products")) {
        if (products->type() != element_type::ARRAY) {
          throw Reject{RejectReason::kWrongFieldType, "properties.products must be an array"};
        }
        for (element p : AsArray(*products)) {
          if (p.type() != element_type::OBJECT) {
            throw Reject{RejectReason::kWrongFieldType, "properties.products[] must be objects"};
          }
          ReadCommerce(AsObject(p), *e.add_line_items());
        }
      }
      if (core::EventTypeOf(e.type()) == core::EventType::kPageViewed &&
          e.context().page_url().empty()) {
        if (auto it = e.properties().find("url"); it != e.properties().end()) {
          e.mutable_context()->set_page_url(it->second);
        }
      }
    }
    if (std::optional<object> ctx_traits = context ? Object(*context, "traits", "context.traits")
                                                   : std::nullopt) {
      if (ids->email().empty()) ids->set_email(String(*ctx_traits, "email", "context.traits.email"));
    }
    if (std::optional<Reject> invalid = Validated(e)) throw *invalid;
    return e;
  }

 private:
  static std::optional<Reject> Validated(const v1::InteractionEvent& e) {
    if (auto r = ValidateEvent(e)) {
      return Reject{r->reason, r->reason == RejectReason::kMissingEventId
                                   ? std::string("messageId is required")
                                   : r->detail};
    }
    return std::nullopt;
  }

  std::optional<element> Field(object o, std::string_view key) {
    element v;
    if (o.at_key(key).get(v) != simdjson::SUCCESS || v.is_null()) return std::nullopt;
    return v;
  }

  std::string String(object o, std::string_view key, std::string_view path) {
    std::optional<element> v = Field(o, key);
    if (!v) return "";
    if (v->type() != element_type::STRING) {
      throw Reject{RejectReason::kWrongFieldType, absl::StrCat(A(path), " must be a string")};
    }
    std::string_view s = v->get_string().value_unsafe();
    CheckLength(s, path);
    return std::string(s);
  }

  std::optional<object> Object(object o, std::string_view key, std::string_view path) {
    std::optional<element> v = Field(o, key);
    if (!v) return std::nullopt;
    if (v->type() != element_type::OBJECT) {
      throw Reject{RejectReason::kWrongFieldType, absl::StrCat(A(path), " must be an object")};
    }
    return AsObject(*v);
  }

  std::optional<double> Number(object o, std::string_view key, std::string_view path) {
    std::optional<element> v = Field(o, key);
    if (!v) return std::nullopt;
    switch (v->type()) {
      case element_type::INT64: return static_cast<double>(v->get_int64().value_unsafe());
      case element_type::UINT64: return static_cast<double>(v->get_uint64().value_unsafe());
      case element_type::DOUBLE: return v->get_double().value_unsafe();
      case element_type::STRING: {  // "12.50" is common in the wild
        double d = 0;
        if (absl::SimpleAtod(std::string(v->get_string().value_unsafe()), &d)) return d;
        [[fallthrough]];
      }
      default:
        throw Reject{RejectReason::kWrongFieldType, absl::StrCat(A(path), " must be a number")};
    }
  }

  // A string or number identifier ("product_id": 123 is common).
  std::string Id(object o, std::string_view key, std::string_view path) {
    std::optional<element> v = Field(o, key);
    if (!v) return "";
    if (v->type() == element_type::STRING) return String(o, key, path);
    if (v->type() == element_type::INT64) return absl::StrCat(v->get_int64().value_unsafe());
    if (v->type() == element_type::UINT64) return absl::StrCat(v->get_uint64().value_unsafe());
    throw Reject{RejectReason::kWrongFieldType, absl::StrCat(A(path), " must be a string or integer")};
  }

  void CheckLength(std::string_view s, std::string_view path) {
    if (s.size() > options_.limits.max_string_bytes) {
      throw Reject{RejectReason::kStringTooLong,
                   absl::StrCat(A(path), " is ", s.size(), " bytes (limit ",
                                options_.limits.max_string_bytes, ")")};
    }
  }

  int64_t EventTime() {
    auto time_of = [&](std::string_view key) -> std::optional<int64_t> {
      const std::string text = String(m_, key, key);
      if (text.empty()) return std::nullopt;
      std::optional<int64_t> ms = internal::ParseRfc3339Ms(text);
      if (!ms) {
        throw Reject{RejectReason::kInvalidEventTime,
                     absl::StrCat(A(key), " '", text, "' is not an RFC 3339 timestamp")};
      }
      return ms;
    };
    const std::optional<int64_t> received = time_of("receivedAt");
    std::optional<int64_t> sent = time_of("sentAt");
    if (!sent) sent = batch_sent_at_;
    const std::optional<int64_t> original = time_of("originalTimestamp");
    if (received && sent && original) return *received - (*sent - *original);
    if (std::optional<int64_t> ts = time_of("timestamp")) return *ts;
    if (original) return *original;
    throw Reject{RejectReason::kInvalidEventTime, "no timestamp or originalTimestamp"};
  }

  void ReadContext(object ctx, v1::InteractionEvent& e) {
    v1::Context* c = e.mutable_context();
    if (std::string channel = String(ctx, "channel", "context.channel"); !channel.empty()) {
      e.set_channel(channel);
    }
    c->set_locale(String(ctx, "locale", "context.locale"));
    c->set_ip(String(ctx, "ip", "context.ip"));
    c->set_user_agent(String(ctx, "userAgent", "context.userAgent"));
    if (std::optional<object> app = Object(ctx, "app", "context.app")) {
      c->set_app_name(String(*app, "name", "context.app.name"));
      c->set_app_version(String(*app, "version", "context.app.version"));
    }
    if (std::optional<object> consent = Object(ctx, "consent", "context.consent")) {
      if (std::optional<object> prefs =
              Object(*consent, "categoryPreferences", "context.consent.categoryPreferences")) {
        for (auto field : *prefs) {
          CheckLength(field.key, "context.consent.categoryPreferences");
          if (field.value.type() != element_type::BOOL) {
            throw Reject{RejectReason::kWrongFieldType,
                         absl::StrCat("context.consent.categoryPreferences.", A(field.key),
                                      " must be true or false")};
          }
          (*c->mutable_consent())[std::string(field.key)] = field.value.get_bool().value_unsafe();
        }
      }
    }
    c->set_timezone(String(ctx, "timezone", "context.timezone"));
    if (std::optional<object> device = Object(ctx, "device", "context.device")) {
      c->set_device(String(*device, "type", "context.device.type"));
      e.mutable_identities()->set_device_id(String(*device, "id", "context.device.id"));
    }
    if (std::optional<object> os = Object(ctx, "os", "context.os")) {
      c->set_os(String(*os, "name", "context.os.name"));
    }
    if (std::optional<object> page = Object(ctx, "page", "context.page")) {
      c->set_page_url(String(*page, "url", "context.page.url"));
    }
    if (std::optional<object> campaign = Object(ctx, "campaign", "context.campaign")) {
      c->set_campaign(String(*campaign, "name", "context.campaign.name"));
    }
    if (std::optional<element> external = Field(ctx, "externalIds")) {
      if (external->type() != element_type::ARRAY) {
        throw Reject{RejectReason::kWrongFieldType, "context.externalIds must be an array"};
      }
      for (element x : AsArray(*external)) {
        if (x.type() != element_type::OBJECT) {
          throw Reject{RejectReason::kWrongFieldType, "context.externalIds[] must be objects"};
        }
        object xo = AsObject(x);
        const std::string kind = String(xo, "type", "context.externalIds[].type");
        const std::string id = Id(xo, "id", "context.externalIds[].id");
        if (!kind.empty() && !id.empty()) (*e.mutable_identities()->mutable_other())[kind] = id;
      }
    }
  }

  void ReadCommerce(object p, v1::Commerce& c) {
    c.set_product_id(Id(p, "product_id", "properties.product_id"));
    if (c.product_id().empty()) c.set_product_id(Id(p, "sku", "properties.sku"));
    // Segment categories use "/" or ">" between levels; the envelope uses ".".
    std::string category = String(p, "category", "properties.category");
    for (char& ch : category) {
      if (ch == '/' || ch == '>') ch = '.';
    }
    c.set_category(std::string(absl::StripAsciiWhitespace(category)));
    c.set_brand(String(p, "brand", "properties.brand"));
    c.set_price(Number(p, "price", "properties.price").value_or(0));
    c.set_quantity(static_cast<int64_t>(Number(p, "quantity", "properties.quantity").value_or(0)));
    double revenue = Number(p, "revenue", "properties.revenue").value_or(0);
    if (revenue == 0) revenue = Number(p, "total", "properties.total").value_or(0);
    c.set_revenue(revenue);
    c.set_currency(String(p, "currency", "properties.currency"));
    c.set_order_id(Id(p, "order_id", "properties.order_id"));
  }

  // Flat string map of an object: scalars as text, objects/arrays as JSON.
  void ReadMap(object o, std::string_view path,
               google::protobuf::Map<std::string, std::string>& out) {
    if (o.size() > options_.limits.max_properties) {
      throw Reject{RejectReason::kTooManyProperties,
                   absl::StrCat(A(path), " has ", o.size(), " entries (limit ",
                                options_.limits.max_properties, ")")};
    }
    for (auto field : o) {
      CheckLength(field.key, path);
      std::string value;
      switch (field.value.type()) {
        case element_type::STRING:
          value = std::string(field.value.get_string().value_unsafe());
          break;
        case element_type::NULL_VALUE:
          continue;
        default:
          value = simdjson::minify(field.value);
      }
      CheckLength(value, absl::StrCat(A(path), ".", A(field.key)));
      out[std::string(field.key)] = std::move(value);
    }
  }

  object m_;
  const SegmentOptions& options_;
  std::optional<int64_t> batch_sent_at_;
};

}  // namespace

std::string SegmentEventType(std::string_view name) {
  static const std::pair<std::string_view, std::string_view> kSpec[] = {
      {"Product Viewed", "product_viewed"},     {"Product Clicked", "product_clicked"},
      {"Product Added", "added_to_cart"},       {"Product Removed", "removed_from_cart"},
      {"Cart Viewed", "cart_viewed"},           {"Checkout Started", "checkout_started"},
      {"Order Completed", "order_completed"},   {"Order Refunded", "order_refunded"},
      {"Products Searched", "products_searched"}, {"Email Opened", "email_opened"},
      {"Email Link Clicked", "email_clicked"},  {"Email Delivered", "email_delivered"},
      {"Email Bounced", "email_bounced"},       {"Unsubscribed", "unsubscribed"}};
  for (const auto& [segment, ours] : kSpec) {
    if (segment == name) return std::string(ours);
  }
  std::string out;
  for (char ch : name) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (absl::ascii_isalnum(c)) {
      out.push_back(static_cast<char>(absl::ascii_tolower(c)));
    } else if (!out.empty() && out.back() != '_') {
      out.push_back('_');
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

struct SegmentDecoder::Impl {
  explicit Impl(SegmentOptions o) : options(std::move(o)) {}
  SegmentOptions options;
  simdjson::dom::parser parser;
};

SegmentDecoder::SegmentDecoder(SegmentOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
SegmentDecoder::~SegmentDecoder() = default;
SegmentDecoder::SegmentDecoder(SegmentDecoder&&) noexcept = default;

std::optional<Rejection> SegmentDecoder::Decode(std::string_view payload,
                                                std::vector<v1::InteractionEvent>& out) {
  const JsonLimits& limits = impl_->options.limits;
  element root;
  if (auto rejection = internal::ParseDocument(impl_->parser, payload, limits, root)) {
    return rejection;
  }
  if (root.type() != element_type::OBJECT) {
    return Rejection{RejectReason::kWrongFieldType, "a Segment message must be a JSON object"};
  }
  const object top = AsObject(root);
  std::vector<v1::InteractionEvent> events;
  try {
    element batch;
    if (top.at_key("batch").get(batch) == simdjson::SUCCESS) {
      if (batch.type() != element_type::ARRAY) {
        return Rejection{RejectReason::kWrongFieldType, "batch must be an array"};
      }
      std::optional<int64_t> sent_at;
      std::string_view sent;
      if (top.at_key("sentAt").get_string().get(sent) == simdjson::SUCCESS) {
        sent_at = internal::ParseRfc3339Ms(sent);
      }
      size_t i = 0;
      for (element m : AsArray(batch)) {
        if (++i > limits.max_batch_events) {
          return Rejection{RejectReason::kBatchTooLarge,
                           absl::StrCat("more than ", limits.max_batch_events, " messages")};
        }
        if (m.type() != element_type::OBJECT) {
          return Rejection{RejectReason::kWrongFieldType,
                           absl::StrCat("batch[", i - 1, "] must be an object")};
        }
        try {
          events.push_back(
              MessageReader(AsObject(m), impl_->options, sent_at).Read());
        } catch (Reject& r) {
          return Rejection{r.reason, absl::StrCat("batch[", i - 1, "]: ", r.detail)};
        }
      }
    } else {
      events.push_back(MessageReader(top, impl_->options, std::nullopt).Read());
    }
  } catch (Reject& r) {
    return Rejection{r.reason, std::move(r.detail)};
  }
  for (v1::InteractionEvent& e : events) out.push_back(std::move(e));
  return std::nullopt;
}

EventFormat SegmentJsonEventFormat() {
  return {.name = "segment-json",
          .summary = "Segment-spec JSON messages or batch bodies",
          .redactable_json = true,
          .split_file = internal::SplitJsonDocuments,
          .create = [](const DecoderOptions& o) -> absl::StatusOr<std::unique_ptr<EventDecoder>> {
            return std::make_unique<internal::DecoderAdapter<SegmentDecoder>>(
                SegmentDecoder(SegmentOptions{o.default_channel, o.limits}));
          }};
}

}  // namespace profiled::ingest
