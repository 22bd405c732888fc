// bench/shared_region.h: anonymous shared memory mapped by the parent before it forks the
// roles, so that every role sees it (the rings and mailboxes of the baselines).
#pragma once

#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

namespace bench {

class SharedRegion {
 public:
  SharedRegion() = default;
  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;
  ~SharedRegion() { unmap(); }

  // Maps `bytes` of zeroes in place of any earlier mapping; false with *err.
  bool map(size_t bytes, std::string* err) {
    unmap();
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      *err = std::string("mmap: ") + std::strerror(errno);
      return false;
    }
    base_ = static_cast<std::byte*>(p);
    bytes_ = bytes;
    return true;
  }
  void unmap() {
    if (base_) munmap(base_, bytes_);
    base_ = nullptr;
    bytes_ = 0;
  }
  std::byte* base() const { return base_; }
  size_t size() const { return bytes_; }

 private:
  std::byte* base_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace bench
