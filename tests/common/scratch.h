// tests/common/scratch.h: what every test folder uses to stay out of the others' way: a
// shared-memory namespace and a temporary directory of its own, both removed at the end;
// byte views of strings; and a bounded wait for a condition.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include "shmbus/shmbus.h"

namespace shmbus::test {

// A namespace no other test (or test process) uses, and its streams removed at the end.
class ScopedNs {
 public:
  explicit ScopedNs(const std::string& prefix = "t") {
    static std::atomic<int> n{0};
    ns_ = prefix + std::to_string(getpid()) + "-" + std::to_string(n++);
  }
  ~ScopedNs() {
    if (auto l = list_streams(ns_); l)
      for (const auto& s : l.value()) (void)remove_stream(ns_, s, true);
  }
  ScopedNs(const ScopedNs&) = delete;
  ScopedNs& operator=(const ScopedNs&) = delete;
  const std::string& ns() const { return ns_; }

 private:
  std::string ns_;
};

// A fresh directory under /tmp (mode 0700, from mkdtemp), removed with everything in it at
// the end.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "shmbus-test") {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    if (!::mkdtemp(tmpl.data())) std::abort();  // no test can run without it
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // The store directory of a stream under this directory used as a data directory.
  std::string stream_dir(const std::string& ns = "ns", const std::string& s = "st") const {
    return path_ + "/" + ns + "/" + s;
  }

 private:
  std::string path_;
};

inline Bytes as_bytes(const std::string& s) {
  return Bytes(reinterpret_cast<const std::byte*>(s.data()), s.size());
}
inline std::string as_string(Bytes b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}
// Publishes "r<i>" for every i in [from, to); false at the first publish that fails.
inline bool publish_numbered(Producer& p, uint64_t from, uint64_t to) {
  for (uint64_t i = from; i < to; ++i)
    if (!p.publish(as_bytes("r" + std::to_string(i))).ok()) return false;
  return true;
}

// Polls `cond` every 2 ms for at most `timeout`: "eventually" conditions on a loaded
// machine get a generous bound, never a tight sleep.
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace shmbus::test
