// cli_test_util.h: the `Cli` fixture of the `shmbus` command tests (test_cli*.cc) and their
// helpers.  Each test uses its own namespace ("t<pid>-<n>") and removes its streams at the end.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../common/scratch.h"
#include "run_cli.h"
#include "shmbus/shmbus.h"

namespace shmbus::test {

inline std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// The raw value after "key": in a flat JSON text (first occurrence), "" if absent.
inline std::string json_raw(const std::string& json, const std::string& key) {
  const std::string k = "\"" + key + "\":";
  const size_t at = json.find(k);
  if (at == std::string::npos) return "";
  size_t i = at + k.size();
  if (json[i] == '"') {  // a string: up to the closing unescaped quote
    size_t j = i + 1;
    while (j < json.size() && json[j] != '"') j += json[j] == '\\' ? 2 : 1;
    return json.substr(i, j + 1 - i);
  }
  size_t j = i;
  int depth = 0;
  while (j < json.size() && (depth > 0 || (json[j] != ',' && json[j] != '}' && json[j] != ']'))) {
    if (json[j] == '[' || json[j] == '{') ++depth;
    if (json[j] == ']' || json[j] == '}') --depth;
    ++j;
  }
  return json.substr(i, j - i);
}

inline bool has_key(const std::string& json, const std::string& key) {
  return json.find("\"" + key + "\":") != std::string::npos;
}

// A failure is a non-zero exit and exactly one line "shmbus: ..." on stderr.
inline void expect_failure(const CliResult& r, const std::string& needle) {
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0) << r.err;
  EXPECT_LT(r.exit_code, 128) << "killed by a signal: " << r.err;
  EXPECT_EQ(r.err.rfind("shmbus: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
}

inline void expect_ok(const CliResult& r) {
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err;
}

class Cli : public ::testing::Test {
 protected:
  shmbus::test::ScopedNs scoped_ns_;  // streams removed at the end
  // A directory of this test's own (data directories, copies of the command), removed
  // at the end also when an assertion fails.
  const shmbus::test::TempDir scratch_{"shmbus-cli"};

  // Runs shmbus with `--namespace <this test's>` appended.
  CliResult cli(std::vector<std::string> args, const std::string& input = {}) {
    args.push_back("--namespace");
    args.push_back(ns_);
    return run_cli(args, input);
  }
  std::vector<std::string> with_ns(std::vector<std::string> args) {
    args.push_back("--namespace");
    args.push_back(ns_);
    return args;
  }
  // What `tail -f` says on stderr when the stream it follows is removed, and when a stream
  // of that name is created again.
  static constexpr const char* kRemovedNote =
      "shmbus: stream 's' was removed; waiting for it to be created again\n";
  static constexpr const char* kCreatedAgainNote =
      "shmbus: stream 's' was created again; following the new stream\n";
  // With `tail -f` of stream 's' running in `bg`: waits for its first output "old\n",
  // removes the stream, and waits until the tail says so.
  void remove_while_following(Background& bg) {
    ASSERT_TRUE(bg.wait_for([](const std::string& out, const std::string&) { return out == "old\n"; }))
        << bg.err();
    expect_ok(cli({"rm", "s", "--force"}));
    ASSERT_TRUE(bg.wait_for([](const std::string&, const std::string& err) {
      return err.find(kRemovedNote) != std::string::npos;
    })) << bg.err();
  }
  void create(const std::string& stream, const std::string& capacity = "64K") {
    expect_ok(cli({"create", stream, "--capacity", capacity}));
  }
  // Waits until `shmbus persist` running in `persister` says it persists.
  static void wait_persisting(Background& persister) {
    ASSERT_TRUE(persister.wait_for(
        [](const std::string&, const std::string& e) { return e.find("persisting") != std::string::npos; }))
        << persister.err();
  }
  // Waits (up to 20 s) until the records of `stream` below `durable` are durable.
  void wait_durable(const std::string& stream, uint64_t durable) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (stream_info(ns_, stream)->durable_seq < durable && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_EQ(stream_info(ns_, stream)->durable_seq, durable);
  }
  // Runs `publish` while `shmbus persist` runs on `stream` (store under `dir`) until
  // `durable` records are durable, then stops it: the stream stays persisted.
  void persist_while(const std::string& stream, const std::filesystem::path& dir, uint64_t durable,
                     const std::function<void()>& publish) {
    Background persister(with_ns({"persist", stream, "--data-dir", dir.string()}));
    ASSERT_NO_FATAL_FAILURE(wait_persisting(persister));
    publish();
    ASSERT_NO_FATAL_FAILURE(wait_durable(stream, durable));
    CliResult r = persister.stop(SIGTERM);  // the stream stays persisted
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  // Publishes `lines` to `stream` that way.
  void publish_persisted(const std::string& stream, const std::filesystem::path& dir,
                         const std::string& lines, uint64_t durable) {
    persist_while(stream, dir, durable, [&] { expect_ok(cli({"pub", stream}, lines)); });
  }

  const std::string ns_ = scoped_ns_.ns();
};

}  // namespace shmbus::test
