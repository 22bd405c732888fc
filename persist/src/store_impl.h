// store_impl.h: the state of a SegmentStore, shared by store.cc (appending, rolling,
// flushing), recovery.cc (open) and retention.cc (deleting).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fork_lock.h"
#include "fs.h"
#include "index.h"
#include "shmbus/persist.h"
#include "sink.h"
#include "sync_worker.h"
#include "watermark.h"

namespace shmbus::persist {

namespace detail {
struct SegmentInfo {
  uint64_t first_seq = 0;
  uint64_t end_seq = 0;   // one past its last record
  uint64_t first_ts = 0;  // of its first record
  uint64_t max_ts = 0;    // newest timestamp in it
  uint64_t records = 0;   // data records
  uint64_t bytes = 0;     // segment + index file bytes
};
}  // namespace detail

struct SegmentStore::Impl {
  StoreOptions opts;
  std::string where;  // "ROOT/NS/STREAM", for messages
  std::string ns;
  std::string stream;
  detail::UniqueFd dir;
  detail::ForkLock lock;  // the writer's flock on LOCK (not kept by forked children)
  bool closed = false;

  // ---- the segments: guarded by the single-writer contract ----
  // Runs the background syncs of flush_start() (before `sink`: it outlives it).
  detail::SyncWorker syncer;
  std::vector<detail::SegmentInfo> sealed;  // oldest first
  // The active segment.  sink is null for a new store, or after a roll that sealed
  // the old segment but could not create the next one (the next append retries).
  std::unique_ptr<detail::SegmentSink> sink;
  detail::SegmentInfo active;
  uint64_t active_created_ns = 0;
  // The active segment's format version: batch frames go only into a version 2 one (a
  // version 1 segment continued after an upgrade takes data frames until it rolls).
  uint16_t active_version = 0;
  detail::IndexBuilder builder{0};
  detail::UniqueFd idx_fd;
  uint64_t idx_written = 0;             // bytes of the index file written
  std::vector<std::byte> idx_pending;   // encoded, not yet written
  PmemGranularity granularity = PmemGranularity::kNotPmem;

  bool fresh = true;   // has never held a record: the first append picks the sequence
  // ... unless it went back to nothing after an I/O error (cut_back): then its first
  // append must be at the sequence it went back to, so that no gap opens unrecorded
  // (a review: a caller retrying "from next_seq()" with next_seq() read while the store
  // was stopped stored 54 as the first record, records 0-53 gone without a mark).
  static constexpr uint64_t kAnySeq = UINT64_MAX;
  uint64_t fresh_at = kAnySeq;
  uint64_t next_seq = 0;
  // release: stored by the writer after a sync; pairs with the acquire in
  // SegmentStore::durable_seq(), which any thread may call.
  std::atomic<uint64_t> durable{0};
  uint64_t first_pending_ns = 0;  // when the oldest unflushed append happened; 0: none
  // A flush_start() whose sync runs: what it covers once it succeeds.
  bool flushing = false;
  uint64_t flush_target = 0;        // next_seq when it started
  size_t flush_index_bytes = 0;     // idx_pending bytes then (entries of synced frames)
  bool dir_dirty = false;         // a file was created: the directory needs an fsync
  detail::Watermark wm;
  StoreStats counters;  // the cumulative fields of StoreStats
  // Set when the store could not go back to its last synced record after an I/O error.
  // Every call first tries that again (cut_back(cut_first, cut_keep)) and fails with
  // `broken_why` while it keeps failing.  Not by reopening: what the page cache holds
  // after a failed sync must not be found, and synced, by a recovery.
  bool broken = false;
  std::string broken_why;
  uint64_t cut_first = 0, cut_keep = 0;

  uint64_t now() const { return opts.clock ? opts.clock() : shmbus::now_ns(); }
  // For the checks every append makes (roll_age, flush_interval): the coarse clock (one
  // tick, 1-4 ms, no clock-source read) is precise enough, where a full clock read per
  // record was a fifth of a 64-byte append.  Never for a time written to disk.
  uint64_t now_coarse() const;
  std::string seg_path(uint64_t first_seq) const;

  // store.cc
  // The payload as a pointer and a size, not a span: a span (by value the 7th and 8th
  // argument, or by reference) was copied with one 16-byte load of what the caller had
  // just stored as two 8-byte words, a store-forwarding stall (~9% of a 64-byte append).
  // A batch frame's records, newest stamp and record bytes (its payload holds their
  // sub-records: append_batch_frame()).
  struct BatchInfo {
    uint64_t records = 0, max_ts = 0, data_bytes = 0;
  };
  Result<void> append_frame(detail::FrameKind kind, uint64_t seq, uint64_t end_seq,
                            uint64_t ts_ns, uint32_t type, const std::byte* data, size_t size,
                            const BatchInfo* batch = nullptr);
  std::vector<std::byte> batch_buf;  // append_batch_frame()'s payload, reused
  // One batch frame of recs[0..n) (n >= 2, consecutive sequences from next_seq, each of
  // at most kBatchRecordMax bytes, their sub-records at most kBatchPayloadMax bytes).
  Result<void> append_batch_frame(const Record* recs, size_t n);
  Result<void> create_segment(uint64_t first_seq, uint64_t min_size);
  Result<void> roll();
  Result<void> discard_empty_active();
  Result<void> sync_data();
  // After a failed sync (or seal): cuts the active segment back to its last synced
  // byte and reopens it there, so that what follows is written again (the caller
  // appends again from next_seq).  Returns `e`, saying where the store went back to.
  Error rewind(Error e);
  Result<void> cut_back(uint64_t first_seq, uint64_t keep);
  Result<void> usable();
  // index_optional: index entries that cannot be written (a full disk) do not fail it
  // (close(): the next open rebuilds the active index; the records are durable).
  Result<void> flush(bool index_optional = false);
  Result<void> flush_start();
  Result<bool> flush_finish(std::chrono::nanoseconds wait);
  // Waits for a flush_start()'s sync and applies it (its error if it failed).
  Result<void> settle();
  Result<void> write_pending_index(size_t limit = SIZE_MAX);
  uint64_t total_bytes() const;

  // recovery.cc
  Result<void> recover();
  Result<detail::SegmentInfo> summarize_sealed(uint64_t first_seq);
  // Withdraws the last segment `first` when it is the end-unknown marker fsck --repair
  // left and the source (opts.source) allows it (StoreOptions::source): whether it did.
  Result<bool> withdraw_end_unknown_marker(uint64_t first);
  Result<void> recover_active(uint64_t first_seq);

  // retention.cc
  Result<DeletionReport> delete_oldest(size_t n, uint64_t at_ns);
};

namespace detail {
// Tests: forgets the tails this process could not cut back (store.cc), as another
// process that opens the store after this one died knows nothing of them.
void forget_unsafe_tails_for_testing();
}  // namespace detail

}  // namespace shmbus::persist
