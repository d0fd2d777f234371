#include "test_support.h"

#include <atomic>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace profiled::testing {

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  path_ = (std::filesystem::temp_directory_path() /
           ("profiled-test-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter.fetch_add(1)) + "-" + std::to_string(rd())))
              .string();
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string ReadSourceFile(const std::string& relative_path) {
  std::ifstream in(std::string(PROFILED_SOURCE_DIR) + "/" + relative_path, std::ios::binary);
  INFO("reading " << relative_path);
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

double MetricValue(const std::string& text, const std::string& name, const std::string& labels) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + " ", 0) != 0 && line.rfind(name + "{", 0) != 0) continue;
    if (!labels.empty() && line.find(labels) == std::string::npos) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

v1::InteractionEvent MakeEvent(const std::string& event_id, const std::string& type,
                               int64_t event_time_ms, const std::string& user_id,
                               const std::string& category, const std::string& product,
                               const std::string& brand) {
  v1::InteractionEvent e;
  e.set_event_id(event_id);
  e.set_type(type);
  e.set_event_time_ms(event_time_ms);
  e.set_channel("web");
  e.mutable_identities()->set_user_id(user_id);
  e.mutable_commerce()->set_category(category);
  e.mutable_commerce()->set_product_id(product);
  e.mutable_commerce()->set_brand(brand);
  return e;
}

}  // namespace profiled::testing
