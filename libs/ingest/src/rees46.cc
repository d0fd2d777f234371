#include "profiled/ingest/rees46.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace profiled::ingest {
namespace {

constexpr size_t kColumns = 9;

std::string_view EventTypeFor(absl::string_view rees46_type) {
  if (rees46_type == "view") return "product_viewed";
  if (rees46_type == "cart") return "added_to_cart";
  if (rees46_type == "remove_from_cart") return "removed_from_cart";
  if (rees46_type == "purchase") return "order_completed";
  return {};
}

}  // namespace

absl::StatusOr<v1::InteractionEvent> ParseRees46Row(std::string_view row, size_t row_number) {
  // Debian's Abseil has its own string_view type: convert once here.
  absl::string_view line(row.data(), row.size());
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<absl::string_view> f = absl::StrSplit(line, ',');
  if (f.size() != kColumns) {
    return absl::InvalidArgumentError(
        absl::StrCat("row ", row_number, ": expected ", kColumns, " columns, got ", f.size()));
  }
  absl::Time at;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%d %H:%M:%S UTC", f[0], absl::UTCTimeZone(), &at, &err)) {
    return absl::InvalidArgumentError(
        absl::StrCat("row ", row_number, ": bad event_time '", f[0], "': ", err));
  }
  std::string_view type = EventTypeFor(f[1]);
  if (type.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("row ", row_number, ": unknown event_type '", f[1], "'"));
  }
  if (f[7].empty()) {
    return absl::InvalidArgumentError(absl::StrCat("row ", row_number, ": empty user_id"));
  }
  double price = 0;
  if (!f[6].empty() && !absl::SimpleAtod(f[6], &price)) {
    return absl::InvalidArgumentError(
        absl::StrCat("row ", row_number, ": bad price '", f[6], "'"));
  }

  v1::InteractionEvent e;
  e.set_event_id(absl::StrCat("rees46-", row_number));
  e.set_type(std::string(type));
  e.set_event_time_ms(absl::ToUnixMillis(at));
  e.set_channel("web");
  e.mutable_identities()->set_user_id(std::string(f[7]));
  e.mutable_context()->set_session_id(std::string(f[8]));
  v1::Commerce* c = e.mutable_commerce();
  c->set_product_id(std::string(f[2]));
  c->set_category_id(std::string(f[3]));
  c->set_category(std::string(f[4]));
  c->set_brand(std::string(f[5]));
  c->set_price(price);
  c->set_quantity(1);
  return e;
}

Rees46Reader::Rees46Reader(std::string_view csv_text) : rest_(csv_text) {
  // Skip the header row.
  size_t eol = rest_.find('\n');
  rest_ = eol == std::string_view::npos ? std::string_view() : rest_.substr(eol + 1);
}

bool Rees46Reader::Next(v1::InteractionEvent& event) {
  while (!rest_.empty()) {
    size_t eol = rest_.find('\n');
    std::string_view line = rest_.substr(0, eol);
    rest_ = eol == std::string_view::npos ? std::string_view() : rest_.substr(eol + 1);
    ++row_number_;
    if (line.empty() || line == "\r") continue;
    absl::StatusOr<v1::InteractionEvent> parsed = ParseRees46Row(line, row_number_);
    if (parsed.ok()) {
      event = *std::move(parsed);
      return true;
    }
    errors_.emplace_back(parsed.status().message());
  }
  return false;
}

}  // namespace profiled::ingest
