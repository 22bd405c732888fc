// shmbus/persist/persister.h: the persister: ring -> segment store, on a thread of its
// own, as the durable consumer group "_persister".
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "shmbus/persist/store.h"
#include "shmbus/result.h"
#include "shmbus/stream.h"

namespace shmbus::persist {

// The durable consumer group a persister reads the ring as (shown by `stat`).
inline constexpr const char* kPersisterGroup = kPersisterGroupName;  // shmbus/stream.h


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
  bool secure_delete = false;  // also kept when the store recorded it (its settings file)
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
  uint64_t lost = 0;           // sequences recorded as lost (records that left the ring
                               // while no persister ran; gaps of aborted or abandoned
                               // claims are recorded as skipped: StoreStats::skipped_marked)
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
  // False once stopped, by stop() or by itself: when the stream's ring is removed (`shmbus
  // rm --force`, perhaps created again) under it, the persister stores what the removed
  // ring still holds (read for up to a second), makes it durable and stops; stats()'s
  // last_error and stop() say so (kNotFound).  It checks the name every 100 ms.
  bool running() const noexcept;

  struct Impl;

 private:
  explicit Persister(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// How long a persister starting takes, at most, to register (it takes its group only
// once it has opened its store).
inline constexpr std::chrono::seconds kPersisterRegisterGrace{1};
// Whether a persister is registered for NS/STREAM: its group (running, or stopped and
// holding producers until one returns) or the store named in the stream's header;
// waiting up to `within` (in steps of 20 ms) for one starting meanwhile, unless `stop`
// says so.  Cannot tell (no stream): true.  For a wait for durability that could only
// time out otherwise (`pub --sync`, `bridge in --sync`).
bool persister_registered(std::string_view ns, std::string_view stream,
                          std::chrono::nanoseconds within = std::chrono::nanoseconds(0),
                          const std::function<bool()>& stop = {});

}  // namespace shmbus::persist
