// sink.h: where the writer puts the bytes of its active segment.  Two kinds behind
// one interface, so that PMDK (no longer developed upstream) stays replaceable:
//   FileSink: gathers appends in a buffer, pwrite()s it in large sequential chunks,
//             fdatasync()s on sync();
//   PmemSink: a pre-sized file mapped with libpmem2; appends are pmem2 memcpy without
//             flush, sync() is the pmem2 persist function (msync on non-DAX files).
// Both produce the same bytes; a sealed PmemSink trims its file to the valid end.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "format.h"
#include "shmbus/persist.h"

namespace shmbus::persist::detail {

class SegmentSink {
 public:
  virtual ~SegmentSink() = default;
  uint64_t end() const noexcept { return end_; }  // logical end: bytes appended so far
  virtual uint64_t capacity() const noexcept = 0;  // append must keep end() <= capacity()
  // Appends every part or nothing: on error end() is unchanged.
  virtual Result<void> append(std::span<const Bytes> parts) = 0;
  // Forgets everything after `end` (<= end()).
  virtual Result<void> rollback(uint64_t end) = 0;
  virtual Result<void> sync() = 0;   // makes [0, end()) durable
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
  uint64_t end_ = 0;
  bool sync_failed_ = false;
};

// `create`: a new file (O_EXCL); else an existing file whose valid bytes end at
// `valid_end` (and nothing after it: recovery truncated it), all of them synced.
Result<std::unique_ptr<SegmentSink>> open_file_sink(int dir, const std::string& name, bool create,
                                                    uint64_t valid_end, uint32_t buffer_bytes);
// The file is pre-sized (posix_fallocate) to `size` rounded up to the mapping
// alignment; on failure a file it created is removed again.
Result<std::unique_ptr<SegmentSink>> open_pmem_sink(int dir, const std::string& name, bool create,
                                                    uint64_t valid_end, uint64_t size);

}  // namespace shmbus::persist::detail
