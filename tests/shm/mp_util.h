// mp_util.h: processes for the multi-process and fault tests.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

namespace shmbus::test {

// The payload every test producer writes: who, which, and a checksum of both.
struct Msg {
  uint32_t producer;
  uint32_t pad;
  uint64_t index;
  uint64_t check;
};
inline uint64_t msg_check(uint32_t producer, uint64_t index) {
  uint64_t x = (static_cast<uint64_t>(producer) << 48) ^ index ^ 0x9e3779b97f4a7c15ULL;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

// Runs fn in a child; the child's exit code is fn's return value (a crash is a failure).
inline pid_t spawn(const std::function<int()>& fn) {
  pid_t pid = fork();
  if (pid == 0) _exit(fn());
  return pid;
}
// Exit code of pid, or 128+signal.
inline int reap(pid_t pid) {
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// A pipe for "ready" bytes and small results from children.
struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (pipe(fds) == 0) { r = fds[0]; w = fds[1]; }
  }
  ~Pipe() { close(r); close(w); }
  void put(const void* p, size_t n) const { (void)!write(w, p, n); }
  // Waits at most `timeout_ms` for each chunk: a test never hangs on a dead child.
  bool get(void* p, size_t n, int timeout_ms = 60000) const {
    size_t got = 0;
    while (got < n) {
      pollfd pfd{r, POLLIN, 0};
      if (::poll(&pfd, 1, timeout_ms) != 1) return false;
      ssize_t k = read(r, static_cast<char*>(p) + got, n - got);
      if (k <= 0) return false;
      got += static_cast<size_t>(k);
    }
    return true;
  }
};

}  // namespace shmbus::test
