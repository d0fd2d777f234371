// libFuzzer target: the Protobuf InteractionEvent decoder and validation.
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace profiled;
  std::vector<v1::InteractionEvent> events(1);
  const auto rejection = ingest::DecodeProtobufEvent(
      std::string_view(reinterpret_cast<const char*>(data), size), events[0]);
  if (rejection) events.clear();
  fuzz::CheckOutcome(rejection, events);
  return 0;
}
