// PrivacyFilter: fields that must never be stored are dropped from every
// event at ingest, before anything reaches RocksDB or a topic; fields that
// may only be kept pseudonymously are replaced by their SHA-256.
//
//   ASSIGN_OR_RETURN(PrivacyFilter filter, PrivacyFilter::Create(options));
//   PrivacyFilter::Counts n = filter.Apply(event);   // after decoding
//   std::optional<std::string> clean = filter.RedactJson(rejected_bytes);  // dead letters
//
// Rules name envelope fields ("context.ip", "traits.ssn", "properties.pin")
// or match property and trait names by pattern (case-insensitive ECMAScript
// regex, searched anywhere in the name). Defaults: drop context.ip and every
// property/trait named like a password, secret, token or card number; hash
// every property/trait named like an email address or phone number.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "profiled/v1/event.pb.h"

namespace profiled::privacy {

struct PrivacyOptions {
  // Envelope fields removed from every event: context.<field>, traits.<key>,
  // properties.<key>. Default: context.ip.
  std::vector<std::string> drop_fields = {"context.ip"};
  // Property/trait names whose entries are removed.
  std::vector<std::string> drop_key_patterns = {
      "passw(or)?d|passphrase|^pwd$|secret|token|card.?(number|num|no)$|credit.?card|^cc.?num|"
      "^cvv|^cvc|^ssn$|social.?security|^iban$"};
  // Envelope fields stored as SHA-256 (hex, of the trimmed, lower-cased value).
  std::vector<std::string> hash_fields = {};
  // Property/trait names whose values are stored as SHA-256.
  std::vector<std::string> hash_key_patterns = {"^e.?mail(_?address)?$|phone|^mobile$"};
};

class PrivacyFilter {
 public:
  // Fails with every bad path and pattern listed.
  [[nodiscard]] static absl::StatusOr<PrivacyFilter> Create(const PrivacyOptions& options);

  struct Counts {
    size_t dropped = 0;
    size_t hashed = 0;
  };
  // Applies every rule to `event` in place.
  Counts Apply(v1::InteractionEvent& event) const;

  // The drop list applied to a rejected JSON message (a Segment message or
  // batch body, or any JSON object): members named by a drop pattern at any
  // depth and dropped context fields are removed. nullopt when `json` does
  // not parse or nothing was dropped (the original bytes are kept).
  std::optional<std::string> RedactJson(std::string_view json) const;

  // True when a property/trait named `key` is dropped.
  bool DropsKey(std::string_view key) const;

 private:
  struct Rules {
    std::vector<std::string> context_fields;      // envelope names, e.g. "ip"
    std::vector<std::string> trait_keys, property_keys;
    std::vector<std::regex> key_patterns;
  };
  // Key names repeat ("product_id", "price", ...) while std::regex costs
  // microseconds per search: pattern verdicts are cached per name.
  struct VerdictCache {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, uint8_t> verdicts ABSL_GUARDED_BY(mu);  // bit 0: drop, 1: hash
  };
  static constexpr uint8_t kDropVerdict = 1, kHashVerdict = 2;
  static constexpr size_t kMaxCachedVerdicts = 10000;  // random key names cannot grow it

  PrivacyFilter(Rules drop, Rules hash)
      : drop_(std::move(drop)), hash_(std::move(hash)), cache_(std::make_shared<VerdictCache>()) {}
  // kDropVerdict / kHashVerdict bits of the key patterns for `key`.
  uint8_t PatternVerdict(std::string_view key) const;

  Rules drop_;
  Rules hash_;
  std::shared_ptr<VerdictCache> cache_;
};

// The pseudonym stored for a hashed field: SHA-256 hex of the trimmed,
// lower-cased value (so a hashed email trait equals its email_sha256 identity).
std::string HashedValue(std::string_view value);

}  // namespace profiled::privacy
