// run_cli.h: running the `shmbus` executable from tests, with a deadline (a hung child
// is killed and reported, never a hung test).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace shmbus::test {

struct CliResult {
  int exit_code = -1;     // the exit status, or 128 + signal number
  bool timed_out = false; // killed at the deadline
  std::string out, err;
};

struct CliEnv {
  std::vector<std::pair<std::string, std::string>> set;  // variables to set
  std::vector<std::string> unset;                        // variables to remove
  // Run as this user and group (>= 0; needs root), with no supplementary groups.
  int64_t uid = -1, gid = -1;
};

// Runs `program args...`, feeding `input` on stdin, and waits for it.
CliResult run_program(const std::string& program, const std::vector<std::string>& args,
                      const std::string& input = {}, const CliEnv& env = {},
                      std::chrono::milliseconds deadline = std::chrono::seconds(15));

// The shmbus command built with the tests.
inline CliResult run_cli(const std::vector<std::string>& args, const std::string& input = {},
                         const CliEnv& env = {}) {
  return run_program(SHMBUS_CLI, args, input, env);
}

// A command left running (e.g. `tail -f`): its output is collected while waiting.
class Background {
 public:
  explicit Background(const std::vector<std::string>& args, const std::string& program = SHMBUS_CLI);
  ~Background();  // SIGKILLs a child that is still running
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  pid_t pid() const { return pid_; }
  // Reads output until pred(out, err) holds or the deadline passes; returns pred's value.
  bool wait_for(const std::function<bool(const std::string&, const std::string&)>& pred,
                std::chrono::milliseconds deadline = std::chrono::seconds(10));
  // Sends `sig` and waits for the exit (SIGKILL after the deadline).
  CliResult stop(int sig, std::chrono::milliseconds deadline = std::chrono::seconds(10));
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  void read_available(int timeout_ms);

  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  std::string out_, err_;
};

}  // namespace shmbus::test
