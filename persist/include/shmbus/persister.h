// shmbus/persister.h: the persister (ring -> segment store) and the replay consumer
// (store -> live ring with no gap and no duplicate).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "shmbus/persist.h"
#include "shmbus/shmbus.h"
#include "shmbus/store_admin.h"

namespace shmbus::persist {

// The durable consumer group a persister reads the ring as (shown by `stat`).
inline constexpr const char* kPersisterGroup = "_persister";


struct PersisterOptions {
  std::string data_dir;                  // resolved with resolve_data_dir()
  StoreKind kind = StoreKind::kFile;
  Durability durability = Durability::kAsync;
  std::chrono::nanoseconds flush_interval = std::chrono::milliseconds(10);
  std::chrono::nanoseconds retention_age{0};   // 0: keep forever
  uint64_t retention_bytes = 0;                // 0: no limit
  uint64_t segment_bytes = 64ULL << 20;
  std::chrono::nanoseconds roll_age = std::chrono::hours(1);
  bool hold_producers = true;            // false: producers go on if the persister dies
  bool secure_delete = false;
  std::chrono::nanoseconds retention_every = std::chrono::seconds(1);
  // What a clean stop() does by default: false keeps the stream persisted, so the
  // stopped persister's group ("_persister") holds producers back until a persister
  // returns (nothing goes unstored); true ends persistence (see stop(bool)).
  bool detach_on_stop = false;
  // When the stream's header names a store in another data dir than this one:
  // kRefuse (an error says which), kMove (the old store directory is renamed into this
  // data dir; same file system only), kNew (a new store here; the old one stays).
  enum class StoreMoved : uint8_t { kRefuse, kMove, kNew };
  StoreMoved store_moved = StoreMoved::kRefuse;
};

struct PersisterStats {
  uint64_t records = 0;        // stored since start (not those a restart found stored)
  uint64_t bytes = 0;          // payload bytes stored since start
  uint64_t lost = 0;           // sequences recorded as lost (gaps, or while dead)
  uint64_t durable_seq = 0;    // records below are durable (as of the last flush)
  uint64_t disk_full_waits = 0;  // writes or flushes refused for lack of space, retried
  // Write and sync failures of the store (each logged).  After a failed sync the store
  // goes back to its last synced record and the persister reads the ring again from its
  // last commit, so nothing is counted durable that a sync did not cover.
  uint64_t store_errors = 0;
  uint64_t store_recoveries = 0;  // a stopped store went back to its last synced record
  std::string last_error;      // the write failure going on (producers are held), or empty
  StoreStats store;
};

// Runs one stream's persister on a thread of its own.  It reads the ring as a durable
// consumer ("_persister"), so the ring never overwrites a record that is not yet
// stored; it commits its ring position only after the records are durable.
class Persister {
 public:
  static Result<std::unique_ptr<Persister>> start(std::string_view ns, std::string_view stream,
                                                  const PersisterOptions& opts);
  ~Persister();  // stop()
  Persister(const Persister&) = delete;
  Persister& operator=(const Persister&) = delete;

  // Thread: any.  Returns once every record published to the stream before the call
  // (everything below the ring's next sequence then) is durable; the write error (e.g.
  // kNoSpace) while the store refuses writes; kTimeout if that takes longer than
  // `timeout` (a producer that claimed a record before the call and has not committed
  // it yet delays the answer until it commits or its claim is abandoned); kClosed once
  // stopped.
  Result<void> flush(std::chrono::nanoseconds timeout = std::chrono::seconds(30));
  PersisterStats stats() const;
  // Thread: any.  Flushes, stops the thread, releases the store.  Idempotent.  An error
  // says the last records read could not be made durable (they stay in the ring).
  // stop() detaches as PersisterOptions::detach_on_stop says; stop(true) also ends
  // persistence of the stream: the "_persister" group goes (producers are free at once)
  // and the header no longer names the store (which stays on disk); stop(false) leaves
  // the group holding producers until a persister returns.
  Result<void> stop();
  Result<void> stop(bool detach);
  bool running() const noexcept;

  struct Impl;

 private:
  explicit Persister(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- replay ----------------------------------------------------------------------

enum class ReplayStatus : uint8_t {
  kOk,        // *rec is the next record
  kTimeout,
  kGap,       // sequences [gap().from, gap().to) will not come: gap().reason says why
  kClosed,
  kError,     // error() says what
};

struct ReplayGap {
  uint64_t from = 0, to = 0;
  std::string reason;   // "deleted", "not persisted", "corrupt", "lost (not persisted stream)"
};

struct ReplayOptions {
  StartFrom start = StartFrom::earliest();
  WaitStrategy wait = WaitStrategy::kBlock;
  bool read_only = false;
  // Where to find the store when the stream has no ring (after a reboot, before anyone
  // re-creates it): resolved as resolve_data_dir() does.
  std::string data_dir;
};

// A tailing consumer that starts anywhere: records older than the ring come from the
// stream's store (found through the stream header), then it switches to the live ring
// with no gap and no duplicate.  Lapped on the ring, it goes back to the store.  On a
// stream that is not persisted it is a plain tailing consumer (laps are kGap).  A stream
// whose ring is gone (a reboot) but whose store is in the data dir is read from the
// store; at its end poll() waits for the ring to come back (kTimeout meanwhile).
class ReplayConsumer {
 public:
  static Result<ReplayConsumer> open(std::string_view ns, std::string_view stream,
                                     const ReplayOptions& opts = {});
  ReplayConsumer(ReplayConsumer&&) noexcept;
  ReplayConsumer& operator=(ReplayConsumer&&) noexcept;
  ~ReplayConsumer();

  // Thread: one at a time.  A record's data is valid until the next poll.  Returns
  // within about `timeout` (plus the time to read what the store holds).  Records that
  // neither the ring nor the store has any more, with no persister attached to store
  // them, are reported as kGap "not persisted".
  ReplayStatus poll(Record* rec, std::chrono::nanoseconds timeout);
  const ReplayGap& gap() const noexcept;
  const Error& error() const noexcept;
  uint64_t next_seq() const noexcept;
  bool from_store() const noexcept;    // reading the store now (else the ring)
  // Whether the stream's name still refers to the ring being read (two system calls: for
  // idle moments): kSame while reading the store of a ring that existed, kRemoved when
  // there is no ring.
  NameState name_state() const noexcept;
  // Times it went from the store to the live ring and found it continuing there (a
  // record with the next sequence, or nothing newer yet).
  uint64_t switches_to_live() const noexcept;

  struct Impl;

 private:
  explicit ReplayConsumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- durable groups -----------------------------------------------------------

// A durable consumer group (ConsumerOptions::group) that takes from the stream's store
// what the ring lost while the group was away: the one place that decides it, for the
// CLI's `tail --group` and Python's Consumer(group=...).  On a stream that is not
// persisted it is the ring's Consumer.  When the ring reports kEvicted (the group was
// evicted and producers overwrote records it had not read) or kBeforeOldest (a start
// below the oldest record in the ring), poll() returns that status once with loss()
// saying what the ring skipped, whether the store has it, and what is lost for good;
// the records the store has then come, in order, before the ring's next record.
// Store holes met meanwhile (deleted, never stored) are reported the same way.
//
// Commits are the ring's: the group's committed position is at the ring's oldest record
// while the store's records are read (a group that stops meanwhile does not get them
// again).
class GroupConsumer {
 public:
  struct Loss {
    uint64_t from = 0, to = 0;  // the sequences the ring skipped (or a store hole)
    uint64_t lost = 0;          // of them, lost for good (0: the store has them all)
    bool from_store = false;    // the store's records of [from, to) come next
  };

  static Result<GroupConsumer> open(std::string_view ns, std::string_view stream,
                                    const ConsumerOptions& opts, std::string_view data_dir = {});
  GroupConsumer(GroupConsumer&&) noexcept;
  GroupConsumer& operator=(GroupConsumer&&) noexcept;
  ~GroupConsumer();

  // Thread: one at a time.  kOk, kTimeout, kEvicted / kBeforeOldest (see loss()),
  // kLapped (a tailing ring consumer, not a group), kCorrupt, kClosed; a failed store
  // read is kCorrupt too, with error() saying why.
  ReadStatus poll(Record* rec, std::chrono::nanoseconds timeout);
  const Loss& loss() const noexcept;
  const Error& error() const noexcept;
  void commit() noexcept;                       // the ring's position (see above)
  Consumer& ring() noexcept;
  bool from_store() const noexcept;             // reading the store now

  struct Impl;

 private:
  explicit GroupConsumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shmbus::persist
