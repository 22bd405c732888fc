// persister_impl.h: the state of a Persister, shared by persister.cc (start, settings,
// following a recorded store, the calls from other threads) and persister_loop.cc (the
// persister thread: ring -> store, durability, retention, answering requests).
#pragma once

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fs.h"  // UniqueFd
#include "shmbus/detail/stream_control.h"
#include "shmbus/persister.h"

namespace shmbus::persist {

struct Persister::Impl {
  // A request from another thread, answered through `done`.
  struct Request {
    enum class Kind { kFlush, kStop } kind;
    std::shared_ptr<std::promise<Result<void>>> done;
    // kFlush: the ring's next sequence and claim position when flush() was called.  The
    // answer waits until the persister has read (and made durable) everything below
    // them: below the sequence, or below the position (the last claims may be gaps,
    // whose sequences the reader never learns).
    uint64_t target = 0;
    uint64_t target_pos = 0;
  };

  std::string ns, stream;
  PersisterOptions opts;
  StoreOptions store_opts;
  ConsumerOptions ring_opts;
  std::optional<SegmentStore> store;
  std::optional<Consumer> ring;
  // ring->gaps() (sequences of aborted or abandoned claims the ring skipped) and
  // ring->lost() as of the last batch read (poll_batch): what grew since tells a skipped
  // range from a lost one.  0 whenever `ring` is opened anew (its counts start there).
  uint64_t ring_gaps_seen = 0, ring_lost_seen = 0;
  // Of the last batch read: what the ring counted before its first record (gaps() and
  // lost() grown since the batch before, less the holes between its records, which are
  // gaps only: a lap or an eviction ends a batch before its record).  Kept while that
  // record waits in `pending` (pending_at_batch_start).
  uint64_t first_gaps = 0, first_lost = 0;
  bool pending_at_batch_start = false;
  // The last record read was small enough for a batch frame: read the next 64 at a time.
  bool small_records = true;
  std::optional<StreamControl> ctl;
  moodycamel::ConcurrentQueue<Request> requests;
  std::thread thread;
  std::atomic<bool> running{false};

  // ---- guarded by req_mu: whether requests are still answered ----
  std::mutex req_mu;
  bool accepting = true;
  std::mutex stop_mu;  // serialises stop()

  // ---- persister thread only ----
  // Deletions accumulate across persister restarts: the header's counts when this one
  // started, to which it adds what its store has deleted since (it is the only writer).
  uint64_t base_deleted_records = 0, base_deleted_bytes = 0, base_store_errors = 0;
  uint64_t applied_deleted_below = 0;  // the header watermark the store has applied
  bool detached = false;

  // After the thread stopped: ends persistence of the stream (the group goes, the header
  // no longer names the store).
  Result<void> detach();
  uint64_t delete_retry_ns = 0;        // after a failed deletion, not before this
  uint64_t refused_deleted_below = 0;  // the header watermark last refused (said once)
  uint64_t fresh_deleted_below = 0;    // the header's watermark over a store empty at start
  // The header watermark's part this persister may apply (see persister_loop.cc).
  uint64_t deletion_asked(uint64_t header_wm, uint64_t now);
  // The store's folder, opened anew (the requests to delete are made there).
  Result<detail::UniqueFd> store_folder() const;
  // The ring cannot reuse what is not committed, and the persister commits only what is
  // durable: make it durable early once this much of the ring waits (a quarter of it),
  // not only every flush_interval.
  uint64_t flush_after_bytes = 0;
  uint64_t uncommitted_bytes = 0;     // ring bytes read since the last commit (roughly)
  uint64_t first_uncommitted_ns = 0;  // steady time of the oldest such read; 0: none
  uint64_t published_durable = 0;     // the durable position last put in the header
  uint64_t retry_at_ns = 0;           // steady time before which no write is retried
  bool write_failing = false;         // last_error holds a write failure
  Error last_write_error{Errc::kIo, ""};
  std::string last_deletion_error;    // the last retention/delete failure logged
  // Records read that the store refused, in order (their views stay valid: the ring
  // cannot overwrite what is not committed, and no read happens while any wait).
  std::vector<Record> pending;
  // A background flush (SegmentStore::flush_start) whose sync runs while the thread reads
  // on.  Once it succeeds, the ring is committed up to flush_mark: what had been read
  // when it started, all of it stored below flush_target then.
  bool flushing = false;
  Consumer::Mark flush_mark;
  uint64_t flush_target = 0;

  mutable std::mutex mu;  // guards stats_ (copied out by stats())
  PersisterStats stats_;

  void run();
  void answer_flushes(std::vector<Request>* waiters, bool stopping);
  // Returns how many records it dealt with (stored now or before).
  uint32_t read_records(bool stopping);
  // The stream's name no longer refers to the ring read (removed, perhaps created again),
  // seen by check_ring_name() (every 100 ms): the persister stores what the old ring
  // still holds, then stops with this error.  A ring created under the name has
  // sequences of its own, and the store it continues is this persister's until it goes.
  std::optional<Error> ring_gone;
  uint64_t next_name_check_ns = 0, ring_gone_ns = 0;
  // True once the loop should stop because the ring went (after `read` records this turn).
  bool check_ring_name(uint32_t read);
  // What the thread ended with, answered to stop() requests that came after its loop.
  Result<void> end_result;
  void make_durable_if_due(bool stopping);
  Result<void> make_durable();
  void start_flush();
  // Collects the background flush, waiting at most `wait`; false while it runs.
  bool finish_flush(std::chrono::nanoseconds wait);
  void publish_durable();
  // Stores recs (read from the ring in this order): those the store holds already (read
  // again after a restart) are passed over, a gap before one is recorded first, and
  // each run of consecutive records goes to the store as one append_batch().  `done`:
  // how many of them were dealt with (stored now or before); `stored` / `bytes`: those
  // stored now; on an error, recs[done..) are not stored.
  struct Stored {
    size_t done = 0;
    uint64_t stored = 0, bytes = 0;
    std::optional<Error> error;
  };
  // at_batch_start: recs[0] is the first record of a batch (the range before it is
  // judged by first_gaps / first_lost; every other range lies between two records of
  // one batch: skipped).
  Stored store_records(std::span<const Record> recs, bool at_batch_start);
  // The store takes [from, to) as a skipped or lost range (see persister_loop.cc).
  Result<void> record_range(uint64_t from, uint64_t to, bool skipped);
  // After a poll_batch() of recs: sets first_gaps / first_lost and takes the ring's
  // counts as seen.
  void absorb_ring_counts(std::span<const Record> recs);
  void note_write_error(const Error& e);
  void after_store_error(const Error& e);
  bool store_usable();
  void note_write_ok();
  void housekeeping(uint64_t* next_retention, uint64_t* next_beat);
  // The heartbeat and the statistics in the header, every 100 ms (also while the store
  // is stopped after an I/O error).
  void beat_if_due(uint64_t now, uint64_t* next_beat);
  void publish_stats();
};

}  // namespace shmbus::persist
