// The format registry: one line per format.
#include <simdjson.h>

#include "absl/strings/str_cat.h"
#include "profiled/ingest/event_decoder.h"

namespace profiled::ingest {

namespace {

// A deque: registering keeps the addresses FindEventFormat handed out.
std::deque<EventFormat>& Registry() {
  static std::deque<EventFormat> formats = {
      ProtobufEventFormat(),
      SegmentJsonEventFormat(),
      MappedJsonEventFormat(),
      Rees46CsvEventFormat(),
  };
  return formats;
}

}  // namespace

const std::deque<EventFormat>& EventFormats() { return Registry(); }

absl::Status RegisterEventFormat(const EventFormat& format) {
  if (format.name.empty() || format.create == nullptr || format.split_file == nullptr) {
    return absl::InvalidArgumentError("an input format needs a name, a decoder and a file split");
  }
  if (FindEventFormat(format.name) != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat("input format '", std::string(format.name), "' is registered already"));
  }
  Registry().push_back(format);
  return absl::OkStatus();
}

const EventFormat* FindEventFormat(std::string_view name) {
  for (const EventFormat& f : EventFormats()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string EventFormatNames() {
  std::string names;
  for (const EventFormat& f : EventFormats()) {
    if (!names.empty()) names += ", ";
    names += f.name;
  }
  return names;
}

namespace internal {

FileRecords SplitLines(std::string_view text) {
  FileRecords out;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") != std::string_view::npos) out.values.emplace_back(line);
  }
  return out;
}

FileRecords SplitJsonDocuments(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text.data(), text.size());
  simdjson::dom::element root;
  if (parser.parse(padded).get(root) == simdjson::SUCCESS) return {{std::string(text)}, {}};
  return SplitLines(text);
}

std::optional<Rejection> CheckSize(std::string_view payload, size_t max_bytes) {
  if (payload.size() <= max_bytes) return std::nullopt;
  return Rejection{RejectReason::kPayloadTooLarge,
                   absl::StrCat("value is ", payload.size(), " bytes (limit ", max_bytes, ")")};
}

}  // namespace internal
}  // namespace profiled::ingest
