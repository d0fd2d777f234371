// JSON string escaping (RFC 8259) for text we embed in hand-built JSON:
// log lines and HTTP error bodies that quote what a client sent.
//
//   std::string body = "{\"error\":\"";
//   AppendJsonEscaped(reason, body);
//   body += "\"}";
#pragma once

#include <string>
#include <string_view>

namespace profiled {

// Appends `text` as the body of a JSON string (without the quotes). Control
// bytes become \uXXXX; UTF-8 passes through unchanged.
inline void AppendJsonEscaped(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 0xf];
        } else {
          out += c;
        }
    }
  }
}

}  // namespace profiled
