// libFuzzer target: the Segment decoder, and the privacy filter's redaction
// of rejected JSON (which must stay valid JSON and be idempotent).
#include <simdjson.h>

#include "fuzz_check.h"
#include "profiled/ingest/segment_json.h"
#include "profiled/privacy/privacy_filter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace profiled;
  static ingest::SegmentDecoder decoder({.default_channel = "web", .limits = {}});
  static const privacy::PrivacyFilter filter = *privacy::PrivacyFilter::Create({});
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  std::vector<v1::InteractionEvent> events;
  const auto rejection = decoder.Decode(input, events);
  fuzz::CheckOutcome(rejection, events);
  for (v1::InteractionEvent& e : events) filter.Apply(e);

  if (std::optional<std::string> clean = filter.RedactJson(input)) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    PROFILED_FUZZ_CHECK(parser.parse(simdjson::padded_string(*clean)).get(root) == simdjson::SUCCESS);
    PROFILED_FUZZ_CHECK(!filter.RedactJson(*clean).has_value());
  }
  return 0;
}
