// Writes fuzz seed corpora from the bundled real data: REES46 rows as
// Protobuf events, and every naughty string as a Segment property value and
// user id. (JSON fixture files are copied as seeds by run.sh.)
//   make_seeds SOURCE_DIR OUT_DIR
#include <fstream>
#include <sstream>
#include <string>

#include "profiled/ingest/rees46.h"

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const std::string src = argv[1], out = argv[2];
  const std::string csv = Slurp(src + "/deploy/demo/data/rees46-2019oct-head/events.csv");
  profiled::ingest::Rees46Reader reader(csv);
  profiled::v1::InteractionEvent e;
  for (int i = 0; i < 64 && reader.Next(e); ++i) {
    Write(out + "/protobuf/rees46-" + std::to_string(i), e.SerializeAsString());
  }
  // blns.json holds one JSON string literal per line.
  std::istringstream lines(Slurp(src + "/tests/data/naughty-strings/blns.json"));
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    const size_t open = line.find('"'), close = line.rfind('"');
    if (open == std::string::npos || close == open) continue;
    const std::string literal = line.substr(open, close - open + 1);
    Write(out + "/segment/blns-" + std::to_string(n++),
          R"({"type":"track","event":"X","messageId":"m","userId":)" + literal +
              R"(,"timestamp":"2024-03-01T10:00:00Z","properties":{"v":)" + literal + "}}");
  }
  return 0;
}
