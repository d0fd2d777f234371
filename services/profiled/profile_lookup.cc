#include "profile_lookup.h"

#include <google/protobuf/util/json_util.h>

#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "profiled/base/json_escape.h"
#include "profiled/cluster/identity_protocol.h"
#include "profiled/cluster/protocol_codec.h"
#include "profiled/codec/state_codec.h"
#include "profiled/codec/update_codec.h"
#include "profiled/core/profile_id.h"
#include "profiled/internal/v1/profile_state.pb.h"
#include "profiled/obs/http_client.h"

namespace profiled::app {
namespace {

constexpr char kPrefix[] = "/v1/profiles/";
constexpr std::string_view kPrefixView = kPrefix;

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

// The identity a /v1/profiles request names, or the response refusing it.
std::variant<core::Identity, obs::HttpResponse> ParseProfilePath(const obs::HttpRequest& request) {
  if (request.method != "GET") return JsonError(405, "only GET is supported");
  std::string_view rest = request.path;
  if (rest.substr(0, kPrefixView.size()) != kPrefixView)
    return JsonError(400, "expected /v1/profiles/{kind}/{value}");
  rest.remove_prefix(kPrefixView.size());
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
  return raw;
}

obs::HttpResponse NotFound(const core::Identity& raw) {
  return JsonError(404, absl::StrCat("no profile for ", raw.kind, " '", raw.value, "'"));
}

// A stored profile state as the output's JSON, scores evaluated now.
obs::HttpResponse Render(std::string_view state, const ProfileView& view) {
  absl::StatusOr<core::Profile> profile = codec::DecodeProfileState(state);
  if (!profile.ok()) return JsonError(500, profile.status().ToString());
  const int64_t as_of = view.clock_mode == core::PipelineClock::Mode::kEventTime
                            ? profile->last_seen_ms
                            : std::max(profile->last_seen_ms, view.wall_clock.NowMs());
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  auto status = google::protobuf::util::MessageToJsonString(
      codec::BuildProfileUpdate(*profile, as_of, view.scoring, view.signals), &json, options);
  if (!status.ok()) return JsonError(500, "cannot render profile");
  return obs::HttpResponse::Json(200, json + "\n");
}

}  // namespace

obs::HttpResponse ProfileLookup::operator()(const obs::HttpRequest& request) const {
  std::variant<core::Identity, obs::HttpResponse> parsed = ParseProfilePath(request);
  if (auto* refused = std::get_if<obs::HttpResponse>(&parsed)) return std::move(*refused);
  const core::Identity& raw = std::get<core::Identity>(parsed);
  std::string id = raw.value;
  if (raw.kind != "profile_id") {
    const core::Identity identity = view.rules.Normalize(raw);
    std::vector<std::optional<std::string>> found;
    if (absl::Status s =
            store.MultiGetIdentities({store::IdentityKey(identity.kind, identity.value)}, found);
        !s.ok()) {
      return JsonError(500, s.ToString());
    }
    if (!found[0]) return NotFound(raw);
    id = *found[0];
  }
  absl::StatusOr<std::optional<std::string>> bytes = store.Get(id);
  if (!bytes.ok()) return JsonError(500, bytes.status().ToString());
  if (!bytes->has_value()) return NotFound(raw);
  return Render(**bytes, view);
}

namespace {

// The answer for a slot in `partition` that this instance does not own: a
// 307 to its owner with `path` (already encoded), or a 503 while it has none.
obs::HttpResponse ToOwner(const pipeline::PartitionedRuntime& runtime, int32_t partition,
                          const std::string& self_address, const std::string& path) {
  const std::optional<std::string> owner = runtime.OwnerAddress(partition);
  if (!owner.has_value() || *owner == self_address) {
    return JsonError(503, absl::StrCat("partition ", partition,
                                       " has no owner right now (a rebalance or a "
                                       "restore); retry shortly"));
  }
  return obs::HttpResponse::Redirect(absl::StrCat("http://", *owner, path));
}

}  // namespace

obs::HttpResponse PartitionedProfileLookup::operator()(const obs::HttpRequest& request) const {
  std::variant<core::Identity, obs::HttpResponse> parsed = ParseProfilePath(request);
  if (auto* refused = std::get_if<obs::HttpResponse>(&parsed)) return std::move(*refused);
  const core::Identity& raw = std::get<core::Identity>(parsed);
  // An identity's slot names its profile; a merged profile's slot names
  // its survivor: each hop may be another partition, on another instance.
  bool by_identity = raw.kind != "profile_id";
  std::string key = by_identity ? core::ProfileIdFor(view.rules.Normalize(raw)) : raw.value;
  for (int hops = 0; hops < 32; ++hops) {
    const int32_t partition = cluster::IdentityProtocol::PartitionOf(key, runtime.partitions());
    absl::StatusOr<std::optional<std::string>> bytes = runtime.ReadSlot(partition, key);
    if (absl::IsFailedPrecondition(bytes.status())) {
      // Another instance's: the same question there (the original path
      // while the identity is still to resolve, the profile id after),
      // encoded again: the request's path was decoded, and "%41" asked
      // for must not arrive as "A".
      return ToOwner(runtime, partition, self_address,
                     by_identity ? absl::StrCat(kPrefix, obs::UrlEncode(raw.kind), "/",
                                                obs::UrlEncode(raw.value))
                                 : absl::StrCat(kPrefix, "profile_id/", obs::UrlEncode(key)));
    }
    if (!bytes.ok()) return JsonError(500, bytes.status().ToString());
    if (!bytes->has_value()) return NotFound(raw);
    std::string state;
    absl::StatusOr<cluster::Slot> slot = cluster::ParseSlot(**bytes, &state);
    if (!slot.ok()) return JsonError(500, slot.status().ToString());
    if (by_identity) {
      if (!slot->identity.has_value()) return NotFound(raw);
      key = slot->identity->label.id;
      by_identity = false;
      continue;
    }
    if (!slot->profile.has_value()) return NotFound(raw);
    if (slot->profile->absorbed_into.has_value()) {
      key = slot->profile->absorbed_into->id;
      continue;
    }
    if (state.empty()) return NotFound(raw);
    return Render(state, view);
  }
  return JsonError(500, "a profile's merges lead on for more than 32 hops");
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
          kScheme[i] ^
          absl::ascii_tolower(static_cast<unsigned char>(i < given.size() ? given[i] : 0)));
    }
    given.remove_prefix(std::min(given.size(), kScheme.size()));
    for (size_t i = 0; i < token.size(); ++i) {
      diff |= static_cast<unsigned char>(token[i] ^ (i < given.size() ? given[i] : 0));
    }
    if (diff != 0) return JsonError(401, "a bearer token is required (Authorization: Bearer ...)");
    return handler(request);
  };
}

namespace {

constexpr std::string_view kMerges = "/v1/merges/";

// The profile id of a /v1/merges/{profile_id} request, or the error answer.
std::variant<std::string, obs::HttpResponse> ParseMergesPath(const obs::HttpRequest& request) {
  if (request.method != "GET") return JsonError(405, "only GET is supported");
  std::string_view id = request.path;
  if (id.substr(0, kMerges.size()) != kMerges || id.size() == kMerges.size() ||
      id.find('/', kMerges.size()) != std::string_view::npos) {
    return JsonError(400, "expected /v1/merges/{profile_id}");
  }
  id.remove_prefix(kMerges.size());
  return std::string(id);
}

// Serialized MergeRecords as a JSON array, in their order.
template <typename Records>
obs::HttpResponse RenderAudit(const Records& records) {
  std::string body = "[";
  ::profiled::internal::v1::MergeRecord record;
  bool first = true;
  for (const std::string& bytes : records) {
    std::string json;
    if (!record.ParseFromString(bytes) ||
        !google::protobuf::util::MessageToJsonString(record, &json).ok()) {
      return JsonError(500, "unreadable merge audit record");
    }
    absl::StrAppend(&body, first ? "" : ",", json);
    first = false;
  }
  return obs::HttpResponse::Json(200, body + "]\n");
}

}  // namespace

obs::HttpResponse MergeAuditLookup::operator()(const obs::HttpRequest& request) const {
  std::variant<std::string, obs::HttpResponse> parsed = ParseMergesPath(request);
  if (auto* refused = std::get_if<obs::HttpResponse>(&parsed)) return std::move(*refused);
  absl::StatusOr<std::vector<std::string>> records = store.ReadAudit(std::get<std::string>(parsed));
  if (!records.ok()) return JsonError(500, records.status().ToString());
  return RenderAudit(*records);
}

obs::HttpResponse PartitionedMergeAuditLookup::operator()(const obs::HttpRequest& request) const {
  std::variant<std::string, obs::HttpResponse> parsed = ParseMergesPath(request);
  if (auto* refused = std::get_if<obs::HttpResponse>(&parsed)) return std::move(*refused);
  const std::string& id = std::get<std::string>(parsed);
  // A profile's audit is kept in its own slot (docs/scaling.md, merge audit).
  const int32_t partition = cluster::IdentityProtocol::PartitionOf(id, runtime.partitions());
  absl::StatusOr<std::optional<std::string>> bytes = runtime.ReadSlot(partition, id);
  if (absl::IsFailedPrecondition(bytes.status())) {
    return ToOwner(runtime, partition, self_address,
                   absl::StrCat(std::string(kMerges), obs::UrlEncode(id)));
  }
  if (!bytes.ok()) return JsonError(500, bytes.status().ToString());
  if (!bytes->has_value()) return RenderAudit(std::vector<std::string>{});
  absl::StatusOr<cluster::Slot> slot = cluster::ParseSlot(**bytes, nullptr);
  if (!slot.ok()) return JsonError(500, slot.status().ToString());
  if (!slot->profile.has_value()) return RenderAudit(std::vector<std::string>{});
  return RenderAudit(slot->profile->audit);
}

}  // namespace profiled::app
