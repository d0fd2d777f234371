// The format registry: one line per format.
#include <simdjson.h>

#include "profiled/ingest/event_decoder.h"

namespace profiled::ingest {

const std::vector<EventFormat>& EventFormats() {
  static const std::vector<EventFormat> formats = {
      ProtobufEventFormat(),
      SegmentJsonEventFormat(),
      MappedJsonEventFormat(),
      Rees46CsvEventFormat(),
  };
  return formats;
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

}  // namespace internal
}  // namespace profiled::ingest
