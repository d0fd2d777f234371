// Catch2's main, plus a watchdog for hangs: CTest kills a test at its
// timeout and shows only what it printed, which says nothing about where it
// was stuck. With PROFILED_TEST_STACKS_AFTER_S set (the tiers set it a little
// under their CTest timeout), a test still running then prints every
// thread's stack (through gdb, when installed) before CTest kills it.
#define CATCH_CONFIG_RUNNER
#include <sys/prctl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

void StartHangWatchdog() {
  const char* after = std::getenv("PROFILED_TEST_STACKS_AFTER_S");
  if (after == nullptr || std::atoi(after) <= 0) return;
  const int seconds = std::atoi(after);
  // gdb, our child, may attach to us even where Yama restricts ptrace.
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
  std::thread([seconds] {
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    std::fprintf(stderr, "\n=== still running after %d s: every thread's stack ===\n", seconds);
    std::fflush(stderr);
    const std::string command = "command -v gdb >/dev/null && gdb -p " + std::to_string(getpid()) +
                                " -batch -nx -ex 'thread apply all bt' 1>&2 2>/dev/null ||"
                                " echo '(gdb not installed: no stacks)' 1>&2";
    if (std::system(command.c_str()) != 0) std::fprintf(stderr, "(stack dump failed)\n");
    std::fflush(stderr);
  }).detach();
}

}  // namespace

int main(int argc, char* argv[]) {
  StartHangWatchdog();
  return Catch::Session().run(argc, argv);
}
