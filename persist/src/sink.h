// sink.h: where the writer puts the bytes of its active segment.  Two kinds behind
// one interface, so that PMDK (no longer developed upstream) stays replaceable:
//   FileSink: gathers appends in a buffer, pwrite()s it in large sequential chunks,
//             fdatasync()s on sync();
//   PmemSink: a pre-sized file mapped with libpmem2; appends are pmem2 memcpy without
//             flush, sync() is the pmem2 persist function (msync on non-DAX files).
// Both produce the same bytes; a sealed PmemSink trims its file to the valid end.
// A sync can also run in the background (sync_start / sync_finish, on a SyncWorker):
// appends go on meanwhile and are not covered by it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "format.h"
#include "fs.h"
#include "shmbus/persist.h"
#include "sync_worker.h"

namespace shmbus::persist::detail {

// The parts' sizes added up.  A plain loop on purpose: vectorized, it read one part's
// size and the next part's pointer as one 16-byte load, which the caller's 8-byte stores
// of the parts (just before the call) cannot forward to: a store-forwarding stall in
// every append (~5% of a 64-byte record's).  The empty asm keeps the sum scalar.
inline uint64_t total_size(std::span<const Bytes> parts) noexcept {
  uint64_t total = 0;
  for (const Bytes& p : parts) {
    total += p.size();
    asm("" : "+r"(total));
  }
  return total;
}

class SegmentSink {
 public:
  virtual ~SegmentSink() = default;
  uint64_t end() const noexcept { return end_; }  // logical end: bytes appended so far
  virtual uint64_t capacity() const noexcept = 0;  // append must keep end() <= capacity()
  // Appends every part or nothing: on error end() is unchanged.
  virtual Result<void> append(std::span<const Bytes> parts) = 0;
  // The sink's next `n` bytes in its write buffer, for the caller to fill in place and
  // then append with append_reserved(n), nothing else between: a small frame is built
  // where it is written, without append()'s copies.  nullptr: this sink has no such
  // buffer or `n` does not fit in it, use append().  An error: as append()'s (nothing
  // appended, end() unchanged).
  virtual Result<std::byte*> reserve(size_t n) {
    (void)n;
    return static_cast<std::byte*>(nullptr);
  }
  virtual void append_reserved(size_t n) { (void)n; }
  // Forgets everything after `end` (<= end()).
  virtual Result<void> rollback(uint64_t end) = 0;
  virtual Result<void> sync() = 0;   // makes [0, end()) durable
  // Starts making [0, end()) durable on `worker` and returns at once (the file sink
  // writes its buffer first, here).  Appends may go on meanwhile (not covered by it);
  // every other call waits for the sync first and applies its result.  An error here
  // started nothing (a failed write of the buffer, as in sync()).
  virtual Result<void> sync_start(SyncWorker* worker) = 0;
  // The result of the sync that sync_start() started, waiting at most `wait` for it
  // (nullopt: still running; success at once when none runs).  Applied as sync()'s
  // would be: on success synced_end() covers the end() that sync_start() saw; on
  // failure sync_failed().
  std::optional<Result<void>> sync_finish(std::chrono::nanoseconds wait) {
    if (!worker_) return Result<void>();
    auto r = worker_->collect(wait);
    if (!r) return std::nullopt;
    worker_ = nullptr;
    sync_done(*r);
    return r;
  }
  bool sync_running() const noexcept { return worker_ != nullptr; }
  // [0, synced_end()) was durable when the last sync returned success.  After a failed
  // sync the bytes after it may never reach the disk (Linux marks their pages clean):
  // the writer cuts the file back to here and writes them again.
  virtual uint64_t synced_end() const noexcept = 0;
  // The last sync() failed in the sync itself (fdatasync / persist), not in writing
  // the buffer: the bytes after synced_end() must be written again.
  bool sync_failed() const noexcept { return sync_failed_; }
  virtual Result<void> seal() = 0;   // sync, trim the file to end(); no appends after
  virtual Result<void> close() = 0;  // sync; the file keeps its size
  virtual uint64_t bytes_on_disk() const noexcept = 0;
  virtual PmemGranularity granularity() const noexcept = 0;
  virtual const std::string& name() const noexcept = 0;

 protected:
  // Waits for a background sync and applies its result (its error, if it failed).
  Result<void> settle() {
    for (;;) {
      if (auto r = sync_finish(std::chrono::seconds(1))) return *r;
    }
  }
  // Applies a background sync's result (called by sync_finish).
  virtual void sync_done(const Result<void>& r) = 0;

  uint64_t end_ = 0;
  bool sync_failed_ = false;
  SyncWorker* worker_ = nullptr;  // runs this sink's background sync; null: none runs
};

// `create`: a new file (O_EXCL); else an existing file whose valid bytes end at
// `valid_end` (and nothing after it: recovery truncated it), all of them synced.
Result<std::unique_ptr<SegmentSink>> open_file_sink(int dir, const std::string& name, bool create,
                                                    uint64_t valid_end, uint32_t buffer_bytes);
// The file is pre-sized (posix_fallocate) to `size` rounded up to the mapping
// alignment; on failure a file it created is removed again.  Where the mapping's
// granularity is a page (no DAX: persisting it is msync, and every first store into a
// page faults), the sink writes the same bytes with buffered pwrite instead (a FileSink
// over the pre-sized file, `buffer_bytes` per write): same bytes, same durability,
// fewer page faults.
Result<std::unique_ptr<SegmentSink>> open_pmem_sink(int dir, const std::string& name, bool create,
                                                    uint64_t valid_end, uint64_t size,
                                                    uint32_t buffer_bytes);
// A FileSink over a file pre-allocated to `size` (file_sink.cc; for open_pmem_sink).
Result<std::unique_ptr<SegmentSink>> make_presized_file_sink(UniqueFd fd, const std::string& name,
                                                             uint64_t valid_end, uint32_t buffer_bytes,
                                                             uint64_t size);

}  // namespace shmbus::persist::detail
