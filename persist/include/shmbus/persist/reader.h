// shmbus/persist/reader.h: reading one stream's segments (SegmentReader) and what a
// read returns (Entry).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "shmbus/result.h"
#include "shmbus/stream.h"  // Bytes

namespace shmbus::persist {

enum class EntryKind : uint8_t {
  kRecord,   // a stored record: seq, ts_ns, type, data
  kLost,     // sequences [seq, end_seq) were never stored (lost-range marker)
  kSkipped,  // sequences [seq, end_seq) were never published (claims aborted or abandoned
             // in the ring): nothing is missing; readers go on as the ring's do
  kDeleted,  // sequences [seq, end_seq) were deleted (watermark or retention)
  kCorrupt,  // damaged bytes skipped: sequences [seq, end_seq) (as far as known) are gone
  kEnd,      // nothing more for now; a live writer may add more: call next() again
};
const char* entry_kind_name(EntryKind k) noexcept;
// Entry::detail of a kLost range that stands for a last segment fsck --repair moved aside
// (its records were stored, then their segment could not be read; where they ended is
// not known, and the range reaches a bound past anything the segment can have held).
inline constexpr std::string_view kEndUnknownDetail =
    "lost: a segment fsck --repair moved aside (its end is not known: the range's end is a bound)";

struct Entry {
  EntryKind kind = EntryKind::kEnd;
  uint64_t seq = 0;        // kRecord: its sequence; otherwise the first one of the range
  uint64_t end_seq = 0;    // one past the range (seq + 1 for a record)
  uint64_t ts_ns = 0;
  uint32_t type = 0;
  Bytes data{};            // kRecord: the payload, valid until the next call on the reader
  uint64_t dropped_bytes = 0;  // kCorrupt: bytes skipped
  std::string detail;          // kCorrupt, kDeleted: where and why; kLost: empty, or
                               // kEndUnknownDetail (the range a segment fsck --repair
                               // moved aside may have held: its end is a bound)
};

// Reads one stream's segments without locking or writing anything; follows a live
// writer (new records and segments appear to next()).  A watermark raised while
// reading takes effect within 10 ms (and at every segment switch).  Every frame is validated
// (bounds, CRC, sequence); a damaged frame in a sealed segment is reported as
// kCorrupt and reading goes on at the next indexed record that is intact.
//
// Thread: one thread at a time per reader.  Move-only.
class SegmentReader {
 public:
  // kNotFound when DIR_ROOT/NS/STREAM does not exist.  Positioned at the earliest record.
  static Result<SegmentReader> open(std::string_view dir_root, std::string_view ns,
                                    std::string_view stream);
  SegmentReader(SegmentReader&&) noexcept;
  SegmentReader& operator=(SegmentReader&&) noexcept;
  ~SegmentReader();

  // The first record still stored (nothing reported about what came before).
  Result<void> seek_earliest();
  // The record `seq`.  If it lies below the watermark, next() first returns kDeleted
  // [seq, watermark); if it lies inside a lost range, kLost [seq, to); if it lies
  // below the oldest segment (and above the watermark: never stored), the oldest record.
  Result<void> seek_seq(uint64_t seq);
  // The first stored record (in sequence order) whose timestamp is >= ts_ns; the
  // records after it follow whatever their timestamps.
  Result<void> seek_time(uint64_t ts_ns);

  // The next entry.  Errors (the position stays put, except where said): kIncompatible
  // or kCorrupt for a segment whose header is not readable or that is not a regular file,
  // kPermission for a symbolic link in its place (for all of these the reader moves past
  // that segment unless it is the last, so calling again continues; position() says
  // where), kIo.
  Result<Entry> next();

  uint64_t position() const noexcept;  // the sequence next() continues from
  // After next() returned an error for a segment it moved past: that segment's first
  // sequence.  The sequences from the position before that call up to it were never
  // stored (the call started below the oldest segment), not damaged.  0 otherwise.
  uint64_t skipped_segment_first() const noexcept;

  struct Impl;

 private:
  explicit SegmentReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmbus::persist
