#include "profiled/ingest/rees46.h"
#include "profiled/ingest/event_decoder.h"
#include "profiled/base/sha256.h"
#include "profiled/core/event_types.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "absl/time/time.h"

namespace profiled::ingest {
namespace {

constexpr size_t kColumns = 9;
constexpr const char* kHeader[kColumns] = {"event_time", "event_type",    "product_id",
                                           "category_id", "category_code", "brand",
                                           "price",       "user_id",       "user_session"};

std::string_view EventTypeFor(absl::string_view rees46_type) {
  using core::EventType;
  if (rees46_type == "view") return core::EventTypeName(EventType::kProductViewed);
  if (rees46_type == "cart") return core::EventTypeName(EventType::kAddedToCart);
  if (rees46_type == "remove_from_cart") return core::EventTypeName(EventType::kRemovedFromCart);
  if (rees46_type == "purchase") return core::EventTypeName(EventType::kOrderCompleted);
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
        absl::StrCat("expected ", kColumns, " columns, got ", f.size()));
  }
  absl::Time at;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%d %H:%M:%S UTC", f[0], absl::UTCTimeZone(), &at, &err)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad event_time '", f[0], "': ", err));
  }
  std::string_view type = EventTypeFor(f[1]);
  if (type.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown event_type '", f[1], "'"));
  }
  if (f[7].empty()) {
    return absl::InvalidArgumentError("empty user_id");
  }
  double price = 0;
  if (!f[6].empty() && !absl::SimpleAtod(f[6], &price)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad price '", f[6], "'"));
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

namespace {

// The header, recognised by its content (names in any case, spaces around
// them ignored): a file may come with or without one.
bool IsHeader(std::string_view row) {
  absl::string_view line(row.data(), row.size());
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<absl::string_view> fields = absl::StrSplit(line, ',');
  if (fields.size() != kColumns) return false;
  for (size_t i = 0; i < kColumns; ++i) {
    if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(fields[i]), kHeader[i])) return false;
  }
  return true;
}

}  // namespace

Rees46Reader::Rees46Reader(std::string_view csv_text) : rest_(csv_text) {
  // A UTF-8 byte order mark (spreadsheet exports) is not part of the header.
  if (rest_.substr(0, 3) == "\xEF\xBB\xBF") rest_.remove_prefix(3);
}

bool Rees46Reader::Next(v1::InteractionEvent& event) {
  while (!rest_.empty()) {
    size_t eol = rest_.find('\n');
    std::string_view line = rest_.substr(0, eol);
    rest_ = eol == std::string_view::npos ? std::string_view() : rest_.substr(eol + 1);
    ++line_number_;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;  // blank: not a row
    if (!seen_first_row_) {
      seen_first_row_ = true;
      if (IsHeader(line)) {
        header_ = true;
        continue;
      }
    }
    ++rows_;
    absl::StatusOr<v1::InteractionEvent> parsed = ParseRees46Row(line, rows_);
    if (parsed.ok()) {
      event = *std::move(parsed);
      return true;
    }
    ++bad_rows_;
    if (errors_.size() < kMaxErrors) {  // enough to see what is wrong
      errors_.push_back(absl::StrCat("line ", line_number_, ": ", parsed.status().message()));
    }
  }
  return false;
}

namespace {

// REES46 rows as Kafka values: one or more rows per value (a header line is
// skipped). A row carries no id of its own, so its event id is a hash of the
// row: a row sent twice is the same event, counted once.
class Rees46CsvDecoder final : public EventDecoder {
 public:
  explicit Rees46CsvDecoder(size_t max_bytes) : max_bytes_(max_bytes) {}
  std::optional<Rejection> Decode(std::string_view payload,
                                  std::vector<v1::InteractionEvent>& out) override {
    if (payload.empty()) return Rejection{RejectReason::kEmptyMessage, "message value is empty"};
    if (auto too_large = internal::CheckSize(payload, max_bytes_)) return too_large;
    std::vector<v1::InteractionEvent> events;
    size_t line_no = 0;
    for (std::string_view rest = payload; !rest.empty();) {
      const size_t eol = rest.find('\n');
      std::string_view line = rest.substr(0, eol);
      rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.find_first_not_of(" \t") == std::string_view::npos || IsHeader(line)) continue;
      absl::StatusOr<v1::InteractionEvent> parsed = ParseRees46Row(line, 0);
      if (!parsed.ok()) {
        return Rejection{RejectReason::kUndecodable,
                         absl::StrCat("line ", line_no, " is not a REES46 row: ",
                                      parsed.status().message())};
      }
      parsed->set_event_id(absl::StrCat("rees46-", Sha256Hex(line).substr(0, 24)));
      events.push_back(*std::move(parsed));
    }
    if (events.empty()) return Rejection{RejectReason::kUndecodable, "no REES46 row in the value"};
    for (v1::InteractionEvent& e : events) out.push_back(std::move(e));
    return std::nullopt;
  }

 private:
  size_t max_bytes_;
};

// A CSV file as one value per data row (the header, if any, is not sent).
FileRecords Rees46Rows(std::string_view text) {
  FileRecords out = internal::SplitLines(text);
  if (!out.values.empty() && out.values.front().substr(0, 3) == "\xEF\xBB\xBF") {
    out.values.front().erase(0, 3);
  }
  if (!out.values.empty() && IsHeader(out.values.front())) out.values.erase(out.values.begin());
  return out;
}

}  // namespace

EventFormat Rees46CsvEventFormat() {
  return {.name = "rees46-csv",
          .summary = "REES46 e-commerce CSV rows (the bundled sample's format)",
          .split_file = Rees46Rows,
          .create = [](const DecoderOptions& o) -> absl::StatusOr<std::unique_ptr<EventDecoder>> {
            return std::make_unique<Rees46CsvDecoder>(o.limits.max_message_bytes);
          }};
}

}  // namespace profiled::ingest
