// Child processes for tests that need real separate processes (crash tests):
// spawn with extra environment, capture output to files, kill, reap.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace profiled::testing {

class ChildProcess {
 public:
  // Starts argv[0] with argv, the current environment plus `env` ("K=V"),
  // stdout and stderr written to the given files.
  ChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
               const std::string& stdout_path, const std::string& stderr_path);
  ~ChildProcess();  // SIGKILLs and reaps a child still running

  pid_t pid() const { return pid_; }
  void Signal(int signal);
  // Exit status: the exit code, or 128 + signal number. nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool Running();

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// True once the file contains `text`, polling until `timeout`.
bool WaitForFileContains(const std::string& path, const std::string& text,
                         std::chrono::milliseconds timeout);
std::string ReadFile(const std::string& path);

}  // namespace profiled::testing
