// fork_during_init: a child forked while another thread of its parent runs the library's
// one-time initialisation (the TSC calibration at the first Producer::open, ~5 ms) must
// not hang.  Before the fix the child found the static's guard taken by a thread that
// does not exist in it, and waited for ever at its own first Producer::open.
//
//   fork_during_init            runs the case 10 times, each in a fresh process (the
//                               calibration happens once per process); exit 0 if no
//                               child hung
//   fork_during_init once NS    one case (internal)
//
// Not under AddressSanitizer (exit 77, skipped): glibc's malloc takes its arena locks
// across fork(), so a child may allocate whatever its parent's threads were doing; GCC
// 12's ASan allocator does not, and a child forked while the opener thread was inside
// malloc waits for ever on the allocator's lock, in ASan, before reaching this library.
// The Release build runs the case.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "shmbus/shmbus.h"

extern char** environ;

namespace {

// Waits for pid at most `seconds`; kills it after.  Its exit code, or -1 if it hung.
int wait_bounded(pid_t pid, int seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  for (;;) {
    int st = 0;
    const pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (std::chrono::steady_clock::now() >= end) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int once(const std::string& ns, int delay_us) {
  shmbus::StreamOptions so;
  so.capacity = 1 << 16;
  if (!shmbus::create_stream(ns, "s", so)) return 2;
  std::thread opener([&] { (void)shmbus::Producer::open(ns, "s"); });  // calibrates
  std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
  const pid_t kid = fork();
  if (kid == 0) {
    auto p = shmbus::Producer::open(ns, "s");  // needs the calibration
    _exit(p ? 0 : 3);
  }
  opener.join();
  const int rc = wait_bounded(kid, 10);
  (void)shmbus::remove_stream(ns, "s");
  if (rc == -1) std::fprintf(stderr, "fork_during_init: the child hung (fork %d us after the opener started)\n", delay_us);
  return rc == -1 ? 1 : rc;
}

}  // namespace

int main(int argc, char** argv) {
#if defined(__SANITIZE_ADDRESS__)
  std::printf("fork_during_init: skipped under AddressSanitizer (its allocator is not fork-safe)\n");
  return 77;
#endif
  if (argc == 4 && std::strcmp(argv[1], "once") == 0) return once(argv[2], std::atoi(argv[3]));
  int failed = 0;
  for (int i = 0; i < 10; ++i) {
    const std::string ns = "forkinit" + std::to_string(getpid()) + "-" + std::to_string(i);
    const std::string delay = std::to_string(200 + 400 * i);  // 0.2 .. 3.8 ms: inside the 5 ms
    char* args[] = {argv[0], const_cast<char*>("once"), const_cast<char*>(ns.c_str()),
                    const_cast<char*>(delay.c_str()), nullptr};
    pid_t pid = 0;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, args, environ) != 0) return 2;
    const int rc = wait_bounded(pid, 30);
    if (rc != 0) {
      std::fprintf(stderr, "fork_during_init: case %d (delay %s us) exited %d\n", i, delay.c_str(), rc);
      ++failed;
    }
  }
  std::printf("fork_during_init: %d of 10 cases failed\n", failed);
  return failed == 0 ? 0 : 1;
}
