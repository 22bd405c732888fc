// `shmbus top` on a real terminal: driven in a detached tmux session of 80x24 (its own
// server, on a socket in the test's directory, killed at the end), keys sent with send-keys, the screen read with
// capture-pane.  Skipped with a message when tmux is not installed.
#include <cstdio>

#include "cli_test_util.h"

namespace shmbus::test {
namespace {

// Runs a shell command; its stdout.
std::string run_sh(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  pclose(f);
  return out;
}

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class TopTmux : public Cli {
 protected:
  void SetUp() override {
    if (std::system("tmux -V >/dev/null 2>&1") != 0) GTEST_SKIP() << "tmux is not installed";
  }
  void TearDown() override {
    if (started_) (void)std::system((tmux_ + " kill-server >/dev/null 2>&1").c_str());
  }
  void start(const std::string& command) {
    started_ = true;
    ASSERT_EQ(std::system((tmux_ + " -f /dev/null new-session -d -x 80 -y 24 -s top " + quoted(command)).c_str()), 0);
  }
  std::string screen() { return run_sh(tmux_ + " capture-pane -p -t top 2>/dev/null"); }
  void keys(const std::string& k) { ASSERT_EQ(std::system((tmux_ + " send-keys -t top " + k).c_str()), 0); }
  // Waits until the screen satisfies `pred`; the screen seen last.
  bool screen_shows(const std::function<bool(const std::string&)>& pred) {
    std::string last;
    const bool ok = eventually([&] {
      last = screen();
      return pred(last);
    }, std::chrono::seconds(20));
    if (!ok) ADD_FAILURE() << "screen:\n" << last;
    return ok;
  }
  static bool has(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }
  static bool has_line_starting(const std::string& s, const std::string& start) {
    for (const auto& l : lines_of(s))
      if (l.rfind(start, 0) == 0) return true;
    return false;
  }

  // Its own server: the socket (as -L NAME would make, but in this test's directory, so
  // that kill-server leaves no socket file behind in /tmp/tmux-UID).
  const std::string tmux_ = "tmux -S " + scratch_.path() + "/tmux.sock";
  bool started_ = false;
};

TEST_F(TopTmux, KeysSortFilterSelectShowConsumersAndQuit) {
  create("alpha");
  create("beta");
  expect_ok(cli({"pub", "beta"}, "1\n2\n3\n4\n5\n"));
  expect_ok(cli({"tail", "beta", "--group", "reader1", "--count", "2"}));
  const std::string exit_file = scratch_.path() + "/exit";
  start(std::string(SHMBUS_CLI) + " top --namespace " + ns_ + "; echo EXIT=$? > " + exit_file + "; sleep 60");

  ASSERT_TRUE(screen_shows([](const std::string& s) {
    return has_line_starting(s, "alpha ") && has_line_starting(s, "beta ") && has(s, "sort STREAM");
  }));
  const std::string first = screen();
  EXPECT_EQ(lines_of(first).size(), 24u) << first;
  for (const auto& l : lines_of(first)) EXPECT_LE(l.size(), 80u * 3) << l;  // UTF-8 sparklines

  keys("s");  // sort: STREAM -> REC/S
  ASSERT_TRUE(screen_shows([](const std::string& s) { return has(s, "sort REC/S") && has(s, "*REC/S"); }));

  keys("/ b e t Enter");  // filter: only beta
  ASSERT_TRUE(screen_shows([](const std::string& s) {
    return has(s, "filter /bet") && has_line_starting(s, "beta ") && !has_line_starting(s, "alpha ");
  }));
  keys("/ BSpace BSpace BSpace Enter");  // filter cleared: both again
  ASSERT_TRUE(screen_shows([](const std::string& s) {
    return !has(s, "filter /") && has_line_starting(s, "alpha ") && has_line_starting(s, "beta ");
  }));

  keys("Down Enter");  // the second stream (beta): its consumers
  ASSERT_TRUE(screen_shows([](const std::string& s) {
    return has_line_starting(s, "CONSUMER") && has_line_starting(s, "reader1 ") && has(s, "beta: lambda");
  }));
  keys("Escape");  // back to the list
  ASSERT_TRUE(screen_shows([](const std::string& s) { return has_line_starting(s, "STREAM ") && has_line_starting(s, "alpha "); }));

  // A smaller window: the frame follows (KEY_RESIZE) and still fits.
  ASSERT_EQ(std::system((tmux_ + " resize-window -t top -x 60 -y 16").c_str()), 0);
  ASSERT_TRUE(screen_shows([](const std::string& s) {
    const auto ls = lines_of(s);
    return ls.size() == 16 && has(ls.back(), "q quit") && has_line_starting(s, "alpha ");
  }));
  for (const auto& l : lines_of(screen())) EXPECT_LE(l.size(), 60u * 3) << l;

  keys("q");
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(exit_file) && std::filesystem::file_size(exit_file) > 0; },
                         std::chrono::seconds(20)))
      << screen();
  std::ifstream f(exit_file);
  std::string said;
  std::getline(f, said);
  EXPECT_EQ(said, "EXIT=0");
}

TEST_F(TopTmux, SigtermEndsTheFullScreenViewWithExit0) {
  create("alpha");
  const std::string exit_file = scratch_.path() + "/exit";
  start(std::string(SHMBUS_CLI) + " top --namespace " + ns_ + "; echo EXIT=$? > " + exit_file + "; sleep 60");
  ASSERT_TRUE(screen_shows([](const std::string& s) { return has_line_starting(s, "alpha "); }));
  // The pane's shell runs top as its only child.
  const std::string shell = run_sh(tmux_ + " list-panes -t top -F '#{pane_pid}'");
  const int shell_pid = std::stoi(shell);
  std::ifstream children("/proc/" + std::to_string(shell_pid) + "/task/" + std::to_string(shell_pid) + "/children");
  int top_pid = 0;
  ASSERT_TRUE(children >> top_pid) << "no child of the pane's shell";
  ASSERT_EQ(kill(top_pid, SIGTERM), 0);
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(exit_file) && std::filesystem::file_size(exit_file) > 0; },
                         std::chrono::seconds(20)))
      << screen();
  std::ifstream f(exit_file);
  std::string said;
  std::getline(f, said);
  EXPECT_EQ(said, "EXIT=0");
}

}  // namespace
}  // namespace shmbus::test
