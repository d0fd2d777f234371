#include "profiled/ingest/event_limits.h"

#include <string>
#include "absl/strings/string_view.h"

#include "absl/strings/str_cat.h"

namespace profiled::ingest {

absl::Status EventLimits::Validate() const {
  // Every problem, one per line: "field: message".
  std::string problems;
  auto add = [&](absl::string_view line) { absl::StrAppend(&problems, problems.empty() ? "" : "\n", line); };
  if (max_key_bytes < 16) add("max_key_bytes: must be at least 16");
  if (max_trait_bytes < 16) add("max_trait_bytes: must be at least 16");
  if (max_line_items < 1) add("max_line_items: must be at least 1");
  return problems.empty() ? absl::OkStatus() : absl::InvalidArgumentError(problems);
}

namespace {

std::optional<Rejection> TooLong(absl::string_view field, size_t size, size_t limit) {
  return Rejection{RejectReason::kStringTooLong,
                   absl::StrCat(field, " is ", size, " bytes (limit ", limit, ")")};
}

std::optional<Rejection> CheckCommerce(const v1::Commerce& c, absl::string_view where,
                                       size_t limit) {
  for (const auto& [name, value] :
       {std::pair<absl::string_view, const std::string*>{"product_id", &c.product_id()},
        {"category", &c.category()},
        {"brand", &c.brand()}}) {
    if (value->size() > limit) return TooLong(absl::StrCat(where, ".", name), value->size(), limit);
  }
  return std::nullopt;
}

}  // namespace

std::optional<Rejection> CheckEventLimits(const v1::InteractionEvent& e, const EventLimits& l) {
  const size_t key = l.max_key_bytes;
  for (const auto& [name, value] :
       {std::pair<absl::string_view, const std::string*>{"type", &e.type()},
        {"channel", &e.channel()},
        {"previous_id", &e.previous_id()},
        {"identities.user_id", &e.identities().user_id()},
        {"identities.anonymous_id", &e.identities().anonymous_id()},
        {"identities.email", &e.identities().email()},
        {"identities.device_id", &e.identities().device_id()},
        {"context.device", &e.context().device()}}) {
    if (value->size() > key) return TooLong(name, value->size(), key);
  }
  for (const auto& [kind, value] : e.identities().other()) {
    if (kind.size() > key) return TooLong("an identity kind", kind.size(), key);
    if (value.size() > key) return TooLong(absl::StrCat("identities.", kind), value.size(), key);
  }
  if (auto r = CheckCommerce(e.commerce(), "commerce", key)) return r;
  if (static_cast<size_t>(e.line_items_size()) > l.max_line_items) {
    return Rejection{RejectReason::kTooManyProperties,
                     absl::StrCat(e.line_items_size(), " line items (limit ", l.max_line_items, ")")};
  }
  for (const v1::Commerce& line : e.line_items()) {
    if (auto r = CheckCommerce(line, "line_items[]", key)) return r;
  }
  for (const auto& [name, value] : e.traits()) {
    if (name.size() > key) return TooLong("a trait key", name.size(), key);
    if (value.size() > l.max_trait_bytes) {
      return TooLong(absl::StrCat("traits.", name), value.size(), l.max_trait_bytes);
    }
  }
  return std::nullopt;
}

}  // namespace profiled::ingest
