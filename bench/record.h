// bench/record.h: the bytes every benchmark record carries, so receivers can check them.
//
//   [0, 8)        sequence number (per producer), or kEndSeq for the end marker
//   [8, 16)       aux: producer id (throughput) or CLOCK_MONOTONIC send stamp (streaming)
//   [16, 24)      CLOCK_REALTIME send stamp (streaming; checks the library's timestamp)
//   [size-8, size) sequence ^ kTailMix: a receiver that reads both ends sees torn records
// The filler between is whatever the sender's buffer held. Records are at least 32 bytes.
// Throughput receivers also load one word of every cache line (touch_lines): a zero-copy
// transport must not look faster only because nobody read the payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace bench {

inline constexpr uint64_t kEndSeq = ~uint64_t(0);
inline constexpr uint64_t kTailMix = 0x5bd1e9955bd1e995ull;
inline constexpr size_t kMinRecord = 32;

struct RecordHeader {
  uint64_t seq = 0;
  uint64_t aux = 0;
  uint64_t realtime = 0;
  bool tail_ok = false;
};

inline void stamp_record(std::span<std::byte> rec, uint64_t seq, uint64_t aux,
                         uint64_t realtime = 0) noexcept {
  const uint64_t tail = seq ^ kTailMix;
  std::memcpy(rec.data(), &seq, 8);
  std::memcpy(rec.data() + 8, &aux, 8);
  std::memcpy(rec.data() + 16, &realtime, 8);
  std::memcpy(rec.data() + rec.size() - 8, &tail, 8);
}

inline RecordHeader read_record(std::span<const std::byte> rec) noexcept {
  RecordHeader h;
  if (rec.size() < kMinRecord) return h;
  uint64_t tail = 0;
  std::memcpy(&h.seq, rec.data(), 8);
  std::memcpy(&h.aux, rec.data() + 8, 8);
  std::memcpy(&h.realtime, rec.data() + 16, 8);
  std::memcpy(&tail, rec.data() + rec.size() - 8, 8);
  h.tail_ok = (tail == (h.seq ^ kTailMix));
  return h;
}

// Loads the first word of every 64-byte line; the caller keeps the result alive.
inline uint64_t touch_lines(std::span<const std::byte> rec) noexcept {
  uint64_t acc = 0;
  for (size_t off = 0; off + 8 <= rec.size(); off += 64) {
    uint64_t w;
    std::memcpy(&w, rec.data() + off, 8);
    acc ^= w;
  }
  return acc;
}

}  // namespace bench
