// bench/shared_region.h: anonymous shared memory mapped by the parent before it forks the
// roles, so that every role sees it (the rings and mailboxes of the baselines), and the
// transport those baselines share: one region cut into equal channels.
#pragma once

#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>

#include "transport.h"

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

// The most slots of `slot_size` bytes, a power of two (at least 2), that fit `bytes`.
inline uint64_t slots_in(size_t bytes, size_t slot_size) {
  uint64_t n = 2;
  while (n * 2 * slot_size <= bytes) n *= 2;
  return n;
}

// A transport whose channels are equal slices of one SharedRegion, each a Header (built in
// place by map_channels()) followed by its data bytes: the shared-memory baselines.
template <class Header>
class RegionTransport : public Transport {
 public:
  std::string cleanup() override {
    mem_.unmap();
    return {};
  }

 protected:
  // Parent, in prepare(): maps `channels` slices of a Header and `data_bytes` each, and
  // builds every Header.  `populate`: touches every page now (as shmbus's open does: no
  // page fault in the first lap).  False with *err.
  bool map_channels(int channels, size_t data_bytes, bool populate, std::string* err) {
    per_channel_ = sizeof(Header) + data_bytes;
    if (!mem_.map(per_channel_ * size_t(channels), err)) return false;
    if (populate) std::memset(mem_.base(), 0, mem_.size());
    for (int c = 0; c < channels; ++c) new (header(c)) Header();
    return true;
  }
  Header* header(int ch) const {
    return reinterpret_cast<Header*>(mem_.base() + per_channel_ * size_t(ch));
  }
  std::byte* data(int ch) const { return mem_.base() + per_channel_ * size_t(ch) + sizeof(Header); }

 private:
  SharedRegion mem_;
  size_t per_channel_ = 0;
};

}  // namespace bench
