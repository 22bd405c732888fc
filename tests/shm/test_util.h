// test_util.h: helpers shared by the shm tests.
#pragma once

#include <unistd.h>

#include <atomic>
#include <string>

#include "shmbus/shmbus.h"

namespace shmbus::test {

// A namespace no other test (or test process) uses, and its streams removed at the end.
class ScopedNs {
 public:
  ScopedNs() {
    static std::atomic<int> n{0};
    ns_ = "t" + std::to_string(getpid()) + "-" + std::to_string(n++);
  }
  ~ScopedNs() {
    if (auto l = list_streams(ns_); l)
      for (const auto& s : l.value()) (void)remove_stream(ns_, s, true);
  }
  const std::string& ns() const { return ns_; }

 private:
  std::string ns_;
};

inline Bytes as_bytes(const std::string& s) {
  return Bytes(reinterpret_cast<const std::byte*>(s.data()), s.size());
}
inline std::string as_string(Bytes b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

}  // namespace shmbus::test
