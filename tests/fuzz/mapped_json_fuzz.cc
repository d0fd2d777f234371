// libFuzzer target: the mapped-JSON decoder with a Mailgun-shaped field map
// (composite ids, fractional Unix seconds, nested pointers, value maps).
#include "fuzz_check.h"
#include "profiled/ingest/mapped_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace profiled;
  static ingest::MappedJsonDecoder decoder = [] {
    ingest::FieldMap map;
    map.event_id = {"/event-data/id", "/event-data/event"};
    map.type = "/event-data/event";
    map.time = "/event-data/timestamp";
    map.type_values = {{"opened", "email_opened"}, {"clicked", "email_clicked"}};
    map.fields = {{"identities.email", "/event-data/recipient"},
                  {"identities.user_id", "/user"},
                  {"context.ip", "/event-data/ip"},
                  {"commerce.price", "/price"},
                  {"commerce.quantity", "/qty"},
                  {"properties.tags", "/event-data/tags"},
                  {"traits.plan", "/plan"}};
    return *ingest::MappedJsonDecoder::Create({"email", {}, map});
  }();
  std::vector<v1::InteractionEvent> events;
  const auto rejection =
      decoder.Decode(std::string_view(reinterpret_cast<const char*>(data), size), events);
  fuzz::CheckOutcome(rejection, events);
  return 0;
}
