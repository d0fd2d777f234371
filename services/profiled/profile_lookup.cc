#include "profile_lookup.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "profiled/base/json_escape.h"
#include "profiled/codec/state_codec.h"
#include "profiled/codec/update_codec.h"
#include "profiled/internal/v1/profile_state.pb.h"

namespace profiled::app {
namespace {

constexpr std::string_view kPrefix = "/v1/profiles/";

// Identity values are ids, emails and hashes: anything longer is not one.
constexpr size_t kMaxValueBytes = 1024;

obs::HttpResponse JsonError(int status, std::string_view reason) {
  std::string body = R"({"error":")";
  AppendJsonEscaped(reason, body);  // reasons quote what the client sent
  body += "\"}\n";
  return obs::HttpResponse::Json(status, body);
}

// Kinds are configuration names: lower-case letters, digits and '_'.
bool IsKindName(std::string_view kind) {
  if (kind.empty() || kind.size() > 64 || !absl::ascii_islower(kind[0])) return false;
  for (char c : kind) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '_') return false;
  }
  return true;
}

}  // namespace

obs::HttpResponse ProfileLookup::operator()(const obs::HttpRequest& request) const {
  if (request.method != "GET") return JsonError(405, "only GET is supported");
  std::string_view rest = request.path;
  if (rest.substr(0, kPrefix.size()) != kPrefix) return JsonError(400, "expected /v1/profiles/{kind}/{value}");
  rest.remove_prefix(kPrefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) {
    return JsonError(400, "expected /v1/profiles/{kind}/{value} with a non-empty kind and value");
  }
  const core::Identity raw{std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1))};
  if (!IsKindName(raw.kind)) {
    return JsonError(400, absl::StrCat("identity kind '", raw.kind,
                                       "' is not a kind name (a-z, 0-9, _; e.g. user_id, email)"));
  }
  if (raw.value.size() > kMaxValueBytes) {
    return JsonError(400, absl::StrCat("identity value longer than ", kMaxValueBytes, " bytes"));
  }
  std::string id = raw.value;
  if (raw.kind != "profile_id") {
    const core::Identity identity = rules.Normalize(raw);
    std::vector<std::optional<std::string>> found;
    if (absl::Status s = store.MultiGetIdentities({store::IdentityKey(identity.kind, identity.value)},
                                                  found);
        !s.ok()) {
      return JsonError(500, s.ToString());
    }
    if (!found[0]) {
      return JsonError(404, absl::StrCat("no profile for ", raw.kind, " '", raw.value, "'"));
    }
    id = *found[0];
  }
  absl::StatusOr<std::optional<std::string>> bytes = store.Get(id);
  if (!bytes.ok()) return JsonError(500, bytes.status().ToString());
  if (!bytes->has_value()) {
    return JsonError(404, absl::StrCat("no profile for ", raw.kind, " '", raw.value, "'"));
  }
  absl::StatusOr<core::Profile> profile = codec::DecodeProfileState(**bytes);
  if (!profile.ok()) return JsonError(500, profile.status().ToString());
  const int64_t as_of = clock_mode == core::PipelineClock::Mode::kEventTime
                            ? profile->last_seen_ms
                            : std::max(profile->last_seen_ms, wall_clock.NowMs());
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  auto status = google::protobuf::util::MessageToJsonString(
      codec::BuildProfileUpdate(*profile, as_of, scoring, signals), &json, options);
  if (!status.ok()) return JsonError(500, "cannot render profile");
  return obs::HttpResponse::Json(200, json + "\n");
}

obs::HttpHandler RequireBearer(std::string token, obs::HttpHandler handler) {
  if (token.empty()) return handler;
  return [token = std::move(token), handler = std::move(handler)](const obs::HttpRequest& request) {
    // The scheme is case-insensitive (RFC 7235), the token is not; compared
    // in constant time over the expected length: no early exit on a mismatch.
    std::string_view given = request.authorization;
    constexpr std::string_view kScheme = "bearer ";
    unsigned char diff = given.size() == kScheme.size() + token.size() ? 0 : 1;
    for (size_t i = 0; i < kScheme.size(); ++i) {
      diff |= static_cast<unsigned char>(
          kScheme[i] ^ absl::ascii_tolower(static_cast<unsigned char>(i < given.size() ? given[i] : 0)));
    }
    given.remove_prefix(std::min(given.size(), kScheme.size()));
    for (size_t i = 0; i < token.size(); ++i) {
      diff |= static_cast<unsigned char>(token[i] ^ (i < given.size() ? given[i] : 0));
    }
    if (diff != 0) return JsonError(401, "a bearer token is required (Authorization: Bearer ...)");
    return handler(request);
  };
}

obs::HttpResponse MergeAuditLookup::operator()(const obs::HttpRequest& request) const {
  constexpr std::string_view kMerges = "/v1/merges/";
  if (request.method != "GET") return JsonError(405, "only GET is supported");
  std::string_view id = request.path;
  if (id.substr(0, kMerges.size()) != kMerges || id.size() == kMerges.size() ||
      id.find('/', kMerges.size()) != std::string_view::npos) {
    return JsonError(400, "expected /v1/merges/{profile_id}");
  }
  id.remove_prefix(kMerges.size());
  absl::StatusOr<std::vector<std::string>> records = store.ReadAudit(id);
  if (!records.ok()) return JsonError(500, records.status().ToString());
  std::string body = "[";
  ::profiled::internal::v1::MergeRecord record;
  for (size_t i = 0; i < records->size(); ++i) {
    std::string json;
    if (!record.ParseFromString((*records)[i]) ||
        !google::protobuf::util::MessageToJsonString(record, &json).ok()) {
      return JsonError(500, "unreadable merge audit record");
    }
    absl::StrAppend(&body, i == 0 ? "" : ",", json);
  }
  return obs::HttpResponse::Json(200, body + "]\n");
}

}  // namespace profiled::app
