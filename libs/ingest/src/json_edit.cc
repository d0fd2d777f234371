#include "profiled/ingest/json_edit.h"

#include <simdjson.h>

#include "profiled/base/json_escape.h"
#include "simdjson_util.h"

namespace profiled::ingest {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

void AppendEscaped(std::string_view s, std::string& out) {
  out.push_back('"');
  AppendJsonEscaped(s, out);
  out.push_back('"');
}

class Writer {
 public:
  explicit Writer(const std::function<bool(std::string_view, std::string_view)>& drop)
      : drop_(drop) {}

  void Write(element e, std::string_view parent, std::string& out) {
    if (e.type() == element_type::OBJECT) {
      out.push_back('{');
      bool first = true;
      for (auto field : internal::AsObject(e)) {
        if (drop_(parent, field.key)) {
          ++removed_;
          continue;
        }
        if (!first) out.push_back(',');
        first = false;
        AppendEscaped(field.key, out);
        out.push_back(':');
        Write(field.value, field.key, out);
      }
      out.push_back('}');
    } else if (e.type() == element_type::ARRAY) {
      out.push_back('[');
      bool first = true;
      for (element child : internal::AsArray(e)) {
        if (!first) out.push_back(',');
        first = false;
        Write(child, "", out);
      }
      out.push_back(']');
    } else {
      out += simdjson::minify(e);
    }
  }
  size_t removed() const { return removed_; }

 private:
  const std::function<bool(std::string_view, std::string_view)>& drop_;
  size_t removed_ = 0;
};

}  // namespace

std::optional<JsonEdit> RemoveJsonMembers(
    std::string_view json,
    const std::function<bool(std::string_view parent, std::string_view key)>& drop) {
  simdjson::dom::parser parser;
  element root;
  if (parser.parse(json.data(), json.size()).get(root) != simdjson::SUCCESS) return std::nullopt;
  Writer writer(drop);
  JsonEdit edit;
  edit.json.reserve(json.size());
  writer.Write(root, "", edit.json);
  edit.removed = writer.removed();
  return edit;
}

}  // namespace profiled::ingest
