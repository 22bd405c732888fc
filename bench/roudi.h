// bench/roudi.h: runs Eclipse iceoryx's RouDi daemon for the iceoryx rows only.
//
// RouDi's threads would disturb the other rows, so the suite starts it right before the
// iceoryx measurements and stops it right after.
#pragma once

#include <sys/types.h>

#include <string>

namespace bench {

class RoudiProcess {
 public:
  RoudiProcess() = default;
  RoudiProcess(const RoudiProcess&) = delete;
  RoudiProcess& operator=(const RoudiProcess&) = delete;
  ~RoudiProcess() { stop(); }

  // Finds iox-roudi on PATH or in /usr/bin, starts it with its output in log_path(), and
  // waits up to 10 s for "RouDi is ready for clients". Empty on success, else the reason.
  // Thread: main only (parent process).
  std::string start();
  // Stops RouDi and removes its log. Idempotent.
  void stop();
  const std::string& log_path() const noexcept { return log_path_; }

 private:
  void terminate();  // SIGTERM, then SIGKILL after 5 s
  pid_t pid_ = -1;
  std::string log_path_;
};

// Full path of iox-roudi, or empty.
std::string find_roudi();

}  // namespace bench
