// The REES46 e-commerce clickstream CSV (Open CDP "eCommerce behavior data
// from multi category store") as InteractionEvents.
//
// Columns: event_time,event_type,product_id,category_id,category_code,brand,
// price,user_id,user_session. event_type view/cart/remove_from_cart/purchase
// become product_viewed/added_to_cart/removed_from_cart/order_completed on
// the "web" channel; user_id is the identity; user_session the session id.
//
//   Rees46Reader reader(csv_text);
//   v1::InteractionEvent e;
//   while (reader.Next(e)) { ... }     // reader.errors() lists bad rows
//
// The header row is recognised by its content (the nine column names), so a
// file without one loses no row; blank lines are not rows. Every other line
// becomes an event or an error naming its line number.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "profiled/v1/event.pb.h"

namespace profiled::ingest {

// Parses one data row (no header) into an event. `row_number` (1-based count
// of data rows, the header not counted) makes the event id "rees46-<row_number>".
[[nodiscard]] absl::StatusOr<v1::InteractionEvent> ParseRees46Row(std::string_view line,
                                                                  size_t row_number);

// Reads every data row of a REES46 CSV text. Rows that do not parse are
// skipped and described in `errors` ("line N: why", N counting from 1).
class Rees46Reader {
 public:
  // `csv_text` must outlive the reader.
  explicit Rees46Reader(std::string_view csv_text);
  // Fills `event` with the next good row; false at the end.
  bool Next(v1::InteractionEvent& event);
  // The first kMaxErrors bad rows, described; bad_rows() counts them all.
  const std::vector<std::string>& errors() const { return errors_; }
  size_t bad_rows() const { return bad_rows_; }
  static constexpr size_t kMaxErrors = 1000;
  // Data rows read so far (events plus errors), and whether a header was found.
  size_t rows() const { return rows_; }
  bool header() const { return header_; }

 private:
  std::string_view rest_;
  size_t line_number_ = 0;
  size_t rows_ = 0;
  bool seen_first_row_ = false;
  bool header_ = false;
  size_t bad_rows_ = 0;
  std::vector<std::string> errors_;
};

}  // namespace profiled::ingest
