#include "roudi.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "clock.h"

namespace bench {

std::string find_roudi() {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/bin:/usr/local/bin";
  std::stringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/iox-roudi";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

namespace {

bool log_says_ready(const std::string& path) {
  std::ifstream in(path);
  std::stringstream all;
  all << in.rdbuf();
  return all.str().find("RouDi is ready for clients") != std::string::npos;
}

}  // namespace

std::string RoudiProcess::start() {
  const std::string exe = find_roudi();
  if (exe.empty()) return "iox-roudi not found on PATH or in /usr/bin";
  log_path_ = "/tmp/shmbus-bench-roudi-" + std::to_string(::getpid()) + ".log";
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    const int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execl(exe.c_str(), exe.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  pid_ = pid;
  const uint64_t deadline = mono_ns() + 10'000'000'000ull;
  while (mono_ns() < deadline) {
    if (log_says_ready(log_path_)) return {};
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return "iox-roudi exited at start (another RouDi running?), see " + log_path_;
    }
    ::usleep(20'000);
  }
  terminate();
  return "iox-roudi did not become ready within 10 s, see " + log_path_;
}

void RoudiProcess::stop() {
  if (pid_ <= 0) return;
  terminate();
  ::unlink(log_path_.c_str());  // kept only when start() failed: it explains why
}

void RoudiProcess::terminate() {
  ::kill(pid_, SIGTERM);
  const uint64_t deadline = mono_ns() + 5'000'000'000ull;
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (mono_ns() > deadline) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    ::usleep(10'000);
  }
  pid_ = -1;
}

}  // namespace bench
