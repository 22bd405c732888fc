// consumer_core.h: the state behind a shmbus.Consumer, shared by its handle (consumer.cc:
// the methods and the pybind registration) and its read loop (consumer_read.cc).
//
// A Consumer with a group is a persist::GroupConsumer (a durable group that takes from
// the store what the ring lost while it was away, on a persisted stream).  Without a
// group it is what persist::open_tail() decides: a persist::ReplayConsumer (store, then
// ring) on a persisted stream or a store whose ring is gone, else a tailing
// GroupConsumer on the ring.
//
// The C++ consumer runs with auto_commit off; this layer commits instead, so that a
// read_batch keeps every record it returned in place (the C++ auto-commit would commit
// each record at the next poll, inside the batch).  Rule: a durable consumer's ring
// records are expired (views released) *before* the position they protect is committed.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common.h"
#include "shmbus/persister.h"
#include "views.h"

namespace shmbus::python {

// An error found inside a read_batch after records were collected: raised by the next
// read (or at once, outside a batch) by raise_read_error().
struct DeferredError {
  bool is_gap = false;
  persist::ReplayGap gap;  // is_gap
  std::string message;     // a lap or an eviction
  uint64_t lost = 0;       // a lap or an eviction
  bool is_evicted = false;
  uint64_t from = 0, to = 0;  // is_evicted
  // Any other error (damage, a store read that failed): raised with this code and the
  // message.
  bool is_error = false;
  Errc code = Errc::kCorrupt;
};
[[noreturn]] void raise_read_error(DeferredError e);

struct ConsumerCore {
  // ---- guarded by mu (blocked on only without the GIL) ----
  std::unique_ptr<persist::GroupConsumer> consumer; // the ring, or null when replaying
  std::unique_ptr<persist::ReplayConsumer> replay;  // store, then ring: tailing on a persisted stream
  std::mutex mu;
  std::atomic<std::thread::id> owner{};  // holder of mu, to refuse re-entry
  // ---- guarded by the GIL ----
  LiveRecords live;        // ring records returned and not yet committed
  // The Python Consumer of this core (borrowed; set at its first read, cleared when it
  // goes): each ring record it hands out references it until the record expires.
  PyObject* py_owner = nullptr;
  bool uncommitted = false;
  // A durable group's record that a poll_async() slice took and nobody has received yet
  // (shmbus/_aio.py): set by the slice, cleared when its outcome is taken and by seek().
  // A close meanwhile (the consumer collected with the slice's record unread) commits
  // below it only, so that the group's next reader gets it (it committed it: a review).
  std::optional<uint64_t> undelivered;
  std::optional<DeferredError> deferred;
  std::optional<persist::ReplayGap> last_gap;
  // ---- snapshots of the C++ counters, written under mu ----
  std::atomic<uint64_t> next_seq{0}, lost{0}, gaps{0};
  // Whether `lost` is exact (Consumer::lost_exact(); a replay counts exactly).
  std::atomic<bool> lost_exact{true};
  // ---- set once (closed: once) ----
  std::atomic<bool> closed{false};
  std::atomic<int> calls{0};  // threads inside a method (holding a reference meanwhile)
  const uint64_t generation = fork_generation();
  std::string ns, name, group;
  bool durable = false, auto_commit = true, copy = false, raise_on_lap = false,
       raise_on_gap = false;

  ~ConsumerCore();
  bool usable() const noexcept { return !closed && generation == fork_generation(); }
  [[noreturn]] void throw_closed() const;
  void snapshot() noexcept;  // Thread: mu held.
  // Commits the ring position of the records returned (a durable group; their views
  // expired first, by the caller).  Thread: GIL and mu held.
  void commit_position() {
    if (uncommitted) consumer->ring().commit();
    uncommitted = false;
  }
  // A read that returned nothing: an auto-committing group commits what it stepped over
  // (records below its start, gaps, pads), when every record it returned is committed;
  // else producers waited on those bytes until a record came (a review: a group sought
  // past the newest record held them for ever).  The ring consumer commits only when
  // its position moved.  Thread: GIL and mu held.
  void commit_stepped_over() {
    if (!durable || !auto_commit || uncommitted || consumer->from_store()) return;
    if (consumer->ring().mark().pos == stepped_over_committed) return;
    consumer->ring().commit();
    stepped_over_committed = consumer->ring().mark().pos;
  }
  uint64_t stepped_over_committed = ~0ULL;  // the ring position commit_stepped_over() committed
  // An error met inside a batch, raised by the next read.  A group's loss stays owed to
  // the group until then (GroupConsumer::defer_loss()): a commit or close meanwhile
  // leaves it to the group's next holder, who is told of it.  Thread: GIL and mu held.
  void defer(DeferredError e) {
    if (consumer && (e.is_evicted || e.is_gap)) consumer->defer_loss();
    deferred = std::move(e);
  }
};

// Opens the C++ consumer of `c` (c.ns, c.name, c.group set): a group's GroupConsumer,
// or what persist::open_tail() decides.  Thread: GIL held (released while opening).
void open_consumer(ConsumerCore& c, const ConsumerOptions& opts, const std::string& data_dir);

// Holds ConsumerCore::mu: try_lock with the GIL, else block without it.  Thread: GIL held.
class CoreLock {
 public:
  explicit CoreLock(ConsumerCore& c);
  void unlock();
  ~CoreLock() { unlock(); }
  CoreLock(const CoreLock&) = delete;
  CoreLock& operator=(const CoreLock&) = delete;

 private:
  ConsumerCore& c_;
  bool held_ = false;
};

// The start argument of the constructor and of seek().
StartFrom to_start(const py::object& start);

// The next record, or None when `timeout` passed (or, with *closed_out, when the
// consumer was closed meanwhile; or, with `in_batch`, when an error is deferred).  Raises
// a deferred error first.  With `commit_first` (auto_commit), the records returned so far
// are expired and committed first, under the same hold of mu as the first poll.  One loop
// for the ring and the replay (consumer_read.cc).  Thread: GIL held.
py::object read_one(const std::shared_ptr<ConsumerCore>& core,
                    std::optional<std::chrono::nanoseconds> timeout, bool* closed_out, bool in_batch,
                    bool commit_first = false);

// Appends to `out` the records there are at once (no wait), until it holds `max`, under
// one hold of mu: the batch path (read_batch, iter_batches), one crossing for many
// records.  An error met is deferred (raised by the next read), so that the records
// already in `out` reach the caller; a deferred error stops it at once.  Thread: GIL held.
void read_more(const std::shared_ptr<ConsumerCore>& core, size_t max, py::list& out);

}  // namespace shmbus::python
