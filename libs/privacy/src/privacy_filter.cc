#include "profiled/privacy/privacy_filter.h"

#include <algorithm>
#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "profiled/base/sha256.h"
#include "profiled/ingest/json_edit.h"

namespace profiled::privacy {
namespace {

// The envelope's context fields a rule may name, with the Segment key that
// carries each (for redacting rejected JSON).
struct ContextField {
  std::string_view envelope;
  std::string_view segment;
  std::string* (*mutable_field)(v1::Context&);
};
#define PROFILED_CONTEXT_FIELD(name, segment) \
  ContextField { #name, segment, [](v1::Context& c) { return c.mutable_##name(); } }
const std::array<ContextField, 11> kContextFields = {
    PROFILED_CONTEXT_FIELD(device, "device"),   PROFILED_CONTEXT_FIELD(os, "os"),
    PROFILED_CONTEXT_FIELD(locale, "locale"),   PROFILED_CONTEXT_FIELD(timezone, "timezone"),
    PROFILED_CONTEXT_FIELD(page_url, "page"),   PROFILED_CONTEXT_FIELD(campaign, "campaign"),
    PROFILED_CONTEXT_FIELD(session_id, "sessionId"), PROFILED_CONTEXT_FIELD(ip, "ip"),
    PROFILED_CONTEXT_FIELD(user_agent, "userAgent"), PROFILED_CONTEXT_FIELD(app_name, "app"),
    PROFILED_CONTEXT_FIELD(app_version, "app")};
#undef PROFILED_CONTEXT_FIELD

const ContextField* FindContextField(std::string_view name) {
  for (const ContextField& f : kContextFields) {
    if (f.envelope == name) return &f;
  }
  return nullptr;
}

bool Contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool AnyMatch(const std::vector<std::regex>& patterns, std::string_view key) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::regex& re) {
    return std::regex_search(key.begin(), key.end(), re);
  });
}

}  // namespace

std::string HashedValue(std::string_view value) {
  return Sha256Hex(absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(absl::string_view(value.data(), value.size()))));
}

absl::StatusOr<PrivacyFilter> PrivacyFilter::Create(const PrivacyOptions& options) {
  std::vector<std::string> errors;
  auto rules = [&](const std::vector<std::string>& fields, const std::vector<std::string>& patterns,
                   const char* what) {
    Rules r;
    for (const std::string& path : fields) {
      const size_t dot = path.find('.');
      const std::string_view head = std::string_view(path).substr(0, dot);
      const std::string_view rest =
          dot == std::string::npos ? std::string_view() : std::string_view(path).substr(dot + 1);
      if (head == "context" && FindContextField(rest) != nullptr) {
        r.context_fields.emplace_back(rest);
      } else if (head == "traits" && !rest.empty()) {
        r.trait_keys.emplace_back(rest);
      } else if (head == "properties" && !rest.empty()) {
        r.property_keys.emplace_back(rest);
      } else {
        std::vector<std::string> names;
        names.reserve(std::size(kContextFields));
        for (const ContextField& f : kContextFields) names.emplace_back(f.envelope);
        errors.push_back(absl::StrCat(
            what, "_fields: '", path,
            "' is not context.<field>, traits.<key> or properties.<key> (context fields: ",
            absl::StrJoin(names, ", "), ")"));
      }
    }
    for (const std::string& p : patterns) {
      try {
        r.key_patterns.emplace_back(p, std::regex::ECMAScript | std::regex::icase);
      } catch (const std::regex_error& e) {
        errors.push_back(absl::StrCat(what, "_key_patterns: '", p, "': ", e.what()));
      }
    }
    return r;
  };
  Rules drop = rules(options.drop_fields, options.drop_key_patterns, "drop");
  Rules hash = rules(options.hash_fields, options.hash_key_patterns, "hash");
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  return PrivacyFilter(std::move(drop), std::move(hash));
}

uint8_t PrivacyFilter::PatternVerdict(std::string_view key) const {
  const absl::string_view k(key.data(), key.size());
  {
    absl::MutexLock lock(&cache_->mu);
    if (auto it = cache_->verdicts.find(k); it != cache_->verdicts.end()) return it->second;
  }
  const uint8_t verdict = (AnyMatch(drop_.key_patterns, key) ? kDropVerdict : 0) |
                          (AnyMatch(hash_.key_patterns, key) ? kHashVerdict : 0);
  absl::MutexLock lock(&cache_->mu);
  if (cache_->verdicts.size() >= kMaxCachedVerdicts) cache_->verdicts.clear();
  cache_->verdicts.emplace(k, verdict);
  return verdict;
}

bool PrivacyFilter::DropsKey(std::string_view key) const {
  return (PatternVerdict(key) & kDropVerdict) != 0;
}

PrivacyFilter::Counts PrivacyFilter::Apply(v1::InteractionEvent& event) const {
  Counts n;
  if (event.has_context()) {
    v1::Context& c = *event.mutable_context();
    for (const std::string& name : drop_.context_fields) {
      std::string* field = FindContextField(name)->mutable_field(c);
      if (!field->empty()) {
        field->clear();
        ++n.dropped;
      }
    }
    for (const std::string& name : hash_.context_fields) {
      std::string* field = FindContextField(name)->mutable_field(c);
      if (!field->empty()) {
        *field = HashedValue(*field);
        ++n.hashed;
      }
    }
  }
  auto filter_map = [&](google::protobuf::Map<std::string, std::string>& map,
                        const std::vector<std::string>& drop_keys,
                        const std::vector<std::string>& hash_keys) {
    for (auto it = map.begin(); it != map.end();) {
      const uint8_t verdict = PatternVerdict(it->first);
      if ((verdict & kDropVerdict) != 0 || Contains(drop_keys, it->first)) {
        it = map.erase(it);
        ++n.dropped;
        continue;
      }
      if ((verdict & kHashVerdict) != 0 || Contains(hash_keys, it->first)) {
        it->second = HashedValue(it->second);
        ++n.hashed;
      }
      ++it;
    }
  };
  filter_map(*event.mutable_traits(), drop_.trait_keys, hash_.trait_keys);
  filter_map(*event.mutable_properties(), drop_.property_keys, hash_.property_keys);
  return n;
}

std::optional<std::string> PrivacyFilter::RedactJson(std::string_view json) const {
  std::optional<ingest::JsonEdit> edit =
      ingest::RemoveJsonMembers(json, [this](std::string_view parent, std::string_view key) {
        if (parent == "context") {
          for (const std::string& name : drop_.context_fields) {
            if (FindContextField(name)->segment == key) return true;
          }
        }
        if ((parent == "traits" && Contains(drop_.trait_keys, key)) ||
            (parent == "properties" && Contains(drop_.property_keys, key))) {
          return true;
        }
        return DropsKey(key);
      });
  if (!edit || edit->removed == 0) return std::nullopt;
  return std::move(edit->json);
}

}  // namespace profiled::privacy
