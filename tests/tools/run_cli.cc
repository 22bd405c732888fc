// run_cli.cc: see run_cli.h.  fork + execv with three pipes; poll() drives them.
#include "run_cli.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace shmbus::test {
namespace {

using Clock = std::chrono::steady_clock;

struct Child {
  pid_t pid;
  int in_fd, out_fd, err_fd;
};

Child spawn(const std::string& program, const std::vector<std::string>& args, const CliEnv& env) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (const auto& [k, v] : env.set) setenv(k.c_str(), v.c_str(), 1);
    for (const auto& k : env.unset) unsetenv(k.c_str());
    signal(SIGPIPE, SIG_DFL);
    if (env.uid >= 0) {
      if (setgroups(0, nullptr) != 0 || setgid(static_cast<gid_t>(env.gid >= 0 ? env.gid : env.uid)) != 0 ||
          setuid(static_cast<uid_t>(env.uid)) != 0)
        _exit(126);
    }
    execv(program.c_str(), argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  return Child{pid, in[1], out[0], err[0]};
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Waits for `pid`; SIGKILLs it at `deadline`.  Returns the decoded status.
int reap(pid_t pid, Clock::time_point deadline, bool* timed_out) {
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return decode_status(status);
    if (r < 0 && errno != EINTR) return -1;
    if (Clock::now() >= deadline) {
      *timed_out = true;
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return decode_status(status);
    }
    usleep(2000);
  }
}

// Appends whatever is readable on `fd` to *s; closes it (sets -1) at end of file.
void drain(int* fd, std::string* s) {
  char buf[65536];
  const ssize_t n = read(*fd, buf, sizeof buf);
  if (n > 0) {
    s->append(buf, static_cast<size_t>(n));
  } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
    close(*fd);
    *fd = -1;
  }
}

int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

}  // namespace

CliResult run_program(const std::string& program, const std::vector<std::string>& args,
                      const std::string& input, const CliEnv& env,
                      std::chrono::milliseconds deadline_in) {
  const auto deadline = Clock::now() + deadline_in;
  signal(SIGPIPE, SIG_IGN);  // a child that exits without reading stdin
  Child c = spawn(program, args, env);
  CliResult res;
  size_t written = 0;
  int in_fd = c.in_fd;
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  while ((c.out_fd >= 0 || c.err_fd >= 0) && Clock::now() < deadline) {
    pollfd fds[3];
    int n = 0;
    if (c.out_fd >= 0) fds[n++] = {c.out_fd, POLLIN, 0};
    if (c.err_fd >= 0) fds[n++] = {c.err_fd, POLLIN, 0};
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    if (poll(fds, static_cast<nfds_t>(n), std::min(ms_left(deadline), 100)) <= 0) continue;
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == in_fd) {
        const ssize_t w = write(in_fd, input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == input.size()) {
          close(in_fd);
          in_fd = -1;
        }
      } else if (fds[i].fd == c.out_fd) {
        drain(&c.out_fd, &res.out);
      } else {
        drain(&c.err_fd, &res.err);
      }
    }
  }
  for (int fd : {in_fd, c.out_fd, c.err_fd})
    if (fd >= 0) close(fd);
  res.exit_code = reap(c.pid, deadline, &res.timed_out);
  return res;
}

Background::Background(const std::vector<std::string>& args, const std::string& program) {
  Child c = spawn(program, args, {});
  close(c.in_fd);
  pid_ = c.pid;
  out_fd_ = c.out_fd;
  err_fd_ = c.err_fd;
}

Background::~Background() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  for (int fd : {out_fd_, err_fd_})
    if (fd >= 0) close(fd);
}

void Background::read_available(int timeout_ms) {
  pollfd fds[2];
  int n = 0;
  if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
  if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
  if (n == 0) {
    usleep(static_cast<useconds_t>(timeout_ms) * 1000);
    return;
  }
  if (poll(fds, static_cast<nfds_t>(n), timeout_ms) <= 0) return;
  for (int i = 0; i < n; ++i) {
    if (!fds[i].revents) continue;
    if (fds[i].fd == out_fd_) drain(&out_fd_, &out_);
    else drain(&err_fd_, &err_);
  }
}

bool Background::wait_for(const std::function<bool(const std::string&, const std::string&)>& pred,
                          std::chrono::milliseconds deadline_in) {
  const auto deadline = Clock::now() + deadline_in;
  while (!pred(out_, err_)) {
    if (Clock::now() >= deadline) return false;
    read_available(std::min(ms_left(deadline), 50));
  }
  return true;
}

CliResult Background::stop(int sig, std::chrono::milliseconds deadline_in) {
  const auto deadline = Clock::now() + deadline_in;
  CliResult res;
  if (pid_ <= 0) return res;
  kill(pid_, sig);
  // Keep reading so that a child blocked on a full pipe can finish.
  while ((out_fd_ >= 0 || err_fd_ >= 0) && Clock::now() < deadline) read_available(50);
  res.exit_code = reap(pid_, deadline, &res.timed_out);
  pid_ = -1;
  res.out = out_;
  res.err = err_;
  return res;
}

}  // namespace shmbus::test
