// tests/common/process.h: child processes and pipes for the multi-process, fault and
// integration tests of every folder.
//
// A child is forked with PR_SET_PDEATHSIG, so it dies with its test process; every wait
// is bounded (a stuck child is killed and reported as -1); pipes are read with poll()
// timeouts.  A test never hangs on a dead or stuck child.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <thread>
#include <vector>

namespace shmbus::test {

// Runs fn in a child that dies with its parent; the child's exit code is fn's return
// value (an exception is 98, a crash 128+signal).  -1 if fork failed.
inline pid_t spawn(const std::function<int()>& fn) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The parent died before the prctl (reparented).  0: the parent lies outside this
    // child's PID namespace (the first process of a new one), which is no death.
    if (const pid_t pp = getppid(); pp != parent && pp != 0) _exit(99);
    int rc = 98;
    try {
      rc = fn();
    } catch (...) {
    }
    _exit(rc);
  }
  return pid;
}

// Exit code of pid, or 128+signal; -1 if it did not end within `timeout` (it is then
// killed and reaped) or is not our child.
inline int reap(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(300)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int st = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) break;
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// The children of one test: killed and reaped at the end whatever happened (also on a
// failed assertion).
class Children {
 public:
  Children() = default;
  Children(const Children&) = delete;
  Children& operator=(const Children&) = delete;
  ~Children() { kill_all(); }
  pid_t spawn(const std::function<int()>& fn) {
    const pid_t pid = test::spawn(fn);
    if (pid > 0) pids_.push_back(pid);
    return pid;
  }
  // As reap().
  int wait(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(300)) {
    forget(pid);
    return reap(pid, timeout);
  }
  // Whether pid has ended (then *code is its exit code, as reap()); never waits.
  bool done(pid_t pid, int* code) {
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) != pid) return false;
    forget(pid);
    *code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return true;
  }
  void kill9(pid_t pid) {
    ::kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    forget(pid);
  }
  void kill_all() {
    for (pid_t p : pids_) {
      ::kill(p, SIGKILL);
      int st;
      waitpid(p, &st, 0);
    }
    pids_.clear();
  }

 private:
  void forget(pid_t pid) { std::erase(pids_, pid); }
  std::vector<pid_t> pids_;
};

// A pipe for "ready" bytes and small results from children; both ends stay open in both
// processes, so reads use poll() timeouts.
struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (::pipe(fds) == 0) {
      r = fds[0];
      w = fds[1];
    }
  }
  ~Pipe() {
    ::close(r);
    ::close(w);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  void put(const void* p, size_t n) const { (void)!::write(w, p, n); }
  // Waits at most `timeout` for all n bytes.
  bool get(void* p, size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(60)) const {
    size_t got = 0;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got < n) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd pfd{r, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) != 1) return false;
      const ssize_t k = ::read(r, static_cast<char*>(p) + got, n - got);
      if (k <= 0) return false;
      got += static_cast<size_t>(k);
    }
    return true;
  }
  bool ready() const {
    pollfd pfd{r, POLLIN, 0};
    return ::poll(&pfd, 1, 0) == 1;
  }
};

// A child forked at a chosen moment (fork_once(), e.g. from an Env hook while a lock is
// held) that lives on until release(): for tests of what a forked child must not keep.
class WaitingChild {
 public:
  void fork_once() {
    if (pid_ < 0)
      pid_ = kids_.spawn([this] {
        char c;
        return go_.get(&c, 1) ? 0 : 1;
      });
  }
  pid_t pid() const { return pid_; }
  // Lets it exit and reaps it: its exit code (0: it waited for this).
  int release() {
    go_.put("g", 1);
    return kids_.wait(pid_);
  }

 private:
  Children kids_;
  Pipe go_;
  pid_t pid_ = -1;
};

// Descriptors 0, 1 and 2 closed, as in a process started with `<&- >&- 2>&-`, until
// restore() (or the end of the scope).  Nothing may print meanwhile: a failed EXPECT
// prints, so keep the results and check them after restore().
class StdioClosed {
 public:
  StdioClosed() {
    for (int fd = 0; fd < 3; ++fd) saved_[fd] = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
    for (int fd = 0; fd < 3; ++fd) ::close(fd);
  }
  ~StdioClosed() { restore(); }
  StdioClosed(const StdioClosed&) = delete;
  StdioClosed& operator=(const StdioClosed&) = delete;
  void restore() {
    for (int fd = 0; fd < 3; ++fd) {
      if (saved_[fd] < 0) continue;
      ::dup2(saved_[fd], fd);
      ::close(saved_[fd]);
      saved_[fd] = -1;
    }
  }
  // Which of 0, 1, 2 are open now (bit fd): while closed, whatever took one of them.
  static unsigned taken() {
    unsigned bits = 0;
    for (int fd = 0; fd < 3; ++fd)
      if (!(::fcntl(fd, F_GETFD) == -1 && errno == EBADF)) bits |= 1u << fd;
    return bits;
  }

 private:
  int saved_[3] = {-1, -1, -1};
};

}  // namespace shmbus::test
