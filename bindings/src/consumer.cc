// consumer.cc: shmbus.Consumer and its iterator.
//
// The C++ consumer runs with auto_commit off; this layer commits instead, so that a
// read_batch keeps every record it returned in place (the C++ auto-commit would commit
// each record at the next poll, inside the batch).  Rule: a durable consumer's ring
// records are expired (views released) *before* the position they protect is committed.
// A ring consumer is a persist::GroupConsumer: a durable group evicted while away (or a
// start below the oldest record) reads from the store what the ring lost, on a persisted
// stream; what is lost for good raises EvictedError (a group) or GapError.
//
// Reading: a first poll that does not wait, with the GIL held (the fast path when data
// is there); then polls of at most kSlice without the GIL, with signals (Ctrl-C) and
// close() checked in between.  The mutex is held only for one C++ call (plus building
// the record), so other threads may use the consumer between slices.
//
// A consumer without a group on a persisted stream is a persist::ReplayConsumer: it
// reads from the store what the ring no longer has and lands on the live ring (as the
// CLI's `tail` does).  Its polls never hold the GIL (the store is read from disk), and
// its records are copies.  Gaps it reports are skipped and counted, or raised as
// GapError (raise_on_gap).  An error met inside read_batch after some records were
// collected (LappedError, GapError) is kept and raised by the next read, so that the
// records already taken out are not dropped.
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "bindings.h"
#include "errors.h"
#include "shmbus/persister.h"
#include "shmbus/store_admin.h"
#include "views.h"

namespace shmbus::python {

namespace {

// An error found inside a read_batch after records were collected: raised by the next read.
struct DeferredError {
  bool is_gap = false;
  persist::ReplayGap gap;  // is_gap
  std::string message;     // a lap or an eviction
  uint64_t lost = 0;       // a lap or an eviction
  bool is_evicted = false;
  uint64_t from = 0, to = 0;  // is_evicted
};

struct ConsumerCore {
  // ---- guarded by mu (blocked on only without the GIL) ----
  std::unique_ptr<persist::GroupConsumer> consumer; // the ring, or null when replaying
  std::unique_ptr<persist::ReplayConsumer> replay;  // store, then ring: tailing on a persisted stream
  std::mutex mu;
  std::atomic<std::thread::id> owner{};  // holder of mu, to refuse re-entry
  // ---- guarded by the GIL ----
  LiveRecords live;        // ring records returned and not yet committed
  bool uncommitted = false;
  std::optional<DeferredError> deferred;
  std::optional<persist::ReplayGap> last_gap;
  // ---- snapshots of the C++ counters, written under mu ----
  std::atomic<uint64_t> next_seq{0}, lost{0}, gaps{0};
  // ---- set once (closed: once) ----
  std::atomic<bool> closed{false};
  std::atomic<int> calls{0};  // threads inside a method (holding a reference meanwhile)
  const uint64_t generation = fork_generation();
  std::string ns, name, group;
  bool durable = false, auto_commit = true, copy = false, raise_on_lap = false,
       raise_on_gap = false;

  ~ConsumerCore() {
    // In a fork child the consumer is the parent's: closing it would detach the parent.
    if (generation != fork_generation()) {
      (void)consumer.release();
      (void)replay.release();
    }
  }
  bool usable() const noexcept { return !closed && generation == fork_generation(); }
  [[noreturn]] void throw_closed() const {
    throw_error(Errc::kClosed, generation != fork_generation()
                                   ? "consumer of stream '" + name +
                                         "' was opened before fork(): open a new one in this process"
                                   : "consumer of stream '" + name + "' is closed");
  }
  void snapshot() noexcept {  // Thread: mu held.
    if (replay) {  // gaps: counted by read_replay()
      next_seq.store(replay->next_seq(), std::memory_order_relaxed);  // relaxed: display only
      return;
    }
    next_seq.store(consumer->ring().next_seq(), std::memory_order_relaxed);  // relaxed: display only
    lost.store(consumer->ring().lost(), std::memory_order_relaxed);
    gaps.store(consumer->ring().gaps(), std::memory_order_relaxed);
  }
};

// Holds ConsumerCore::mu: try_lock with the GIL, else block without it.  Thread: GIL held.
class CoreLock {
 public:
  explicit CoreLock(ConsumerCore& c) : c_(c) {
    if (!c_.mu.try_lock()) {
      if (c_.owner.load() == std::this_thread::get_id())
        throw_error(Errc::kBusy, "consumer of stream '" + c_.name +
                                     "' re-entered while it was reading (from a finalizer?)");
      py::gil_scoped_release nogil;
      c_.mu.lock();
    }
    c_.owner.store(std::this_thread::get_id());
    held_ = true;
  }
  void unlock() {
    if (!held_) return;
    c_.owner.store(std::thread::id());
    c_.mu.unlock();
    held_ = false;
  }
  ~CoreLock() { unlock(); }
  CoreLock(const CoreLock&) = delete;
  CoreLock& operator=(const CoreLock&) = delete;

 private:
  ConsumerCore& c_;
  bool held_ = false;
};

StartFrom to_start(const py::object& start) {
  if (start.is_none()) return StartFrom{};
  if (PyBool_Check(start.ptr()))
    throw py::type_error("start must be 'earliest', 'latest', 'committed', a sequence number "
                         "(int) or a datetime, not bool");
  if (PyLong_Check(start.ptr())) {
    py::int_ i = start;
    if (py::int_(0) > i)
      throw_error(Errc::kInvalidArgument, "start sequence number must be >= 0");
    return StartFrom::seq(start.cast<uint64_t>());
  }
  if (py::isinstance<py::str>(start)) {
    const auto text = start.cast<std::string>();
    if (text == "committed") return StartFrom{};
    return unwrap(parse_start(text));
  }
  py::module_ dt = py::module_::import("datetime");
  if (py::isinstance(start, dt.attr("datetime"))) {
    // Naive means local time, as datetime.timestamp() has it.
    py::object aware = start.attr("tzinfo").is_none() ? start.attr("astimezone")() : start;
    py::object epoch = dt.attr("datetime")(1970, 1, 1, py::arg("tzinfo") = dt.attr("timezone").attr("utc"));
    py::object delta = aware - epoch;
    const int64_t days = delta.attr("days").cast<int64_t>();
    const int64_t secs = delta.attr("seconds").cast<int64_t>();
    const int64_t us = delta.attr("microseconds").cast<int64_t>();
    const int64_t ns = (days * 86400 + secs) * 1'000'000'000 + us * 1000;
    if (days < 0 || ns < 0) throw_error(Errc::kInvalidArgument, "start time is before 1970");
    return StartFrom::time_ns(static_cast<uint64_t>(ns));
  }
  throw py::type_error("start must be 'earliest', 'latest', 'committed', a sequence number (int) "
                       "or a datetime, not " +
                       std::string(py::str(py::type::of(start).attr("__name__"))));
}

// Counts a thread inside a ConsumerHandle method, which holds a reference to the core.
class InCall {
 public:
  explicit InCall(std::shared_ptr<ConsumerCore> c) : c_(std::move(c)) { ++c_->calls; }
  ~InCall() { --c_->calls; }
  InCall(const InCall&) = delete;
  InCall& operator=(const InCall&) = delete;
  const std::shared_ptr<ConsumerCore>& core() const noexcept { return c_; }

 private:
  std::shared_ptr<ConsumerCore> c_;
};

class ConsumerHandle {
 public:
  ConsumerHandle(const std::string& name, const py::object& group, const py::object& start,
                 const py::object& ns, bool auto_commit, bool copy, bool read_only,
                 const std::string& wait, bool raise_on_lap, bool raise_on_gap,
                 const py::object& data_dir) {
    auto core = std::make_shared<ConsumerCore>();
    core->ns = namespace_of(ns);
    core->name = name;
    ConsumerOptions opts;
    if (!group.is_none()) {
      if (!py::isinstance<py::str>(group))
        throw py::type_error("group must be a str or None");
      core->group = group.cast<std::string>();
      if (core->group.empty())
        throw_error(Errc::kInvalidArgument,
                    "group name is empty: use group=None for a tailing (anonymous) consumer");
    }
    opts.group = core->group;
    opts.start = to_start(start);
    opts.wait = to_wait_strategy(wait);
    opts.auto_commit = false;  // committed here: see the top of this file
    opts.read_only = read_only;
    core->auto_commit = auto_commit;
    core->copy = copy;
    core->raise_on_lap = raise_on_lap;
    core->raise_on_gap = raise_on_gap;
    if (core->group.empty() && open_replay(*core, opts, path_arg(data_dir, "data_dir"))) {
      core->snapshot();
      core_ = std::move(core);
      return;
    }
    Result<persist::GroupConsumer> r = make_error(Errc::kIo, "");
    {
      py::gil_scoped_release nogil;  // open may wait for a creator still at work
      r = persist::GroupConsumer::open(core->ns, name, opts, path_arg(data_dir, "data_dir"));
    }
    core->consumer = std::make_unique<persist::GroupConsumer>(unwrap(std::move(r)));
    core->durable = core->consumer->ring().durable();
    core->snapshot();
    core_ = std::move(core);
  }
  ConsumerHandle(const ConsumerHandle&) = delete;
  ConsumerHandle& operator=(const ConsumerHandle&) = delete;
  ~ConsumerHandle() {
    try {
      close();
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("shmbus.Consumer.__del__");
    }
  }

  py::object poll(const py::object& timeout) {
    InCall in(live());
    const auto& core = in.core();
    auto t = to_timeout(timeout, "timeout");
    if (core->auto_commit) commit_locked(core);
    return read_one(core, t, nullptr, false);
  }

  py::list read_batch(int64_t max_records, const py::object& timeout) {
    InCall in(live());
    const auto& core = in.core();
    if (max_records < 1) throw_error(Errc::kInvalidArgument, "max_records must be >= 1");
    auto t = to_timeout(timeout, "timeout");
    if (core->auto_commit) commit_locked(core);
    py::list out;
    py::object rec = read_one(core, t, nullptr, false);
    while (!rec.is_none()) {
      out.append(rec);
      if (static_cast<int64_t>(out.size()) >= max_records) break;
      rec = read_one(core, std::chrono::nanoseconds(0), nullptr, true);
    }
    return out;
  }

  // One step of iteration: None when idle_timeout passed or the consumer was closed.
  py::object next(std::optional<std::chrono::nanoseconds> idle) {
    if (!core_ || !core_->usable()) return py::none();
    InCall in(core_);
    const auto& core = in.core();
    if (core->auto_commit) commit_locked(core);
    bool closed = false;
    return read_one(core, idle, &closed, false);
  }

  void commit() {
    InCall in(live());
    commit_locked(in.core());
  }

  void seek(const py::object& start) {
    InCall in(live());
    const std::shared_ptr<ConsumerCore>& core = in.core();
    ConsumerCore& c = *core;
    if (c.replay)
      throw_error(Errc::kInvalidArgument,
                  "seek() moves a ring consumer; a replaying consumer starts where it is opened "
                  "(open a new Consumer with start=...)");
    const StartFrom where = to_start(start);
    c.live.expire_all();  // views into the old position die first
    CoreLock lock(c);
    Result<void> r;
    {
      py::gil_scoped_release nogil;
      r = c.consumer->ring().seek(where);
    }
    c.uncommitted = false;
    check(r);
    c.snapshot();
  }

  void close() {
    if (!core_) return;
    std::shared_ptr<ConsumerCore> core = std::move(core_);
    core->closed = true;
    if (core->generation != fork_generation()) return;
    core->live.expire_all();
    if (core->durable && core->auto_commit && core->uncommitted) {
      CoreLock lock(*core);  // waits at most one slice for a reader in another thread
      core->consumer->ring().commit();
      core->uncommitted = false;
      core->snapshot();
    }
    // The C++ Consumer closes (detaches) when `core` is the last reference: now, unless
    // an array or memoryview of one of its records is still alive.
    if (core->durable && core.use_count() > 1 + core->calls.load()) {
      const std::string msg =
          "shmbus.Consumer of stream '" + core->name + "' (group '" + core->group +
          "') stays attached, holding producers back at its committed position, until the "
          "arrays and memoryviews made from its records are freed";
      if (PyErr_WarnEx(PyExc_ResourceWarning, msg.c_str(), 1) != 0) throw py::error_already_set();
    }
  }

  bool closed() const noexcept { return !core_ || !core_->usable(); }
  bool from_store() {
    const ConsumerCore& c = info();
    if (!c.replay || !c.usable()) return false;
    CoreLock lock(*core_);
    return c.replay->from_store();
  }
  const ConsumerCore& info() const {
    if (!core_) throw_error(Errc::kClosed, "consumer is closed");
    return *core_;
  }
  std::string repr() const {
    if (!core_) return "<shmbus.Consumer closed>";
    return "<shmbus.Consumer stream='" + core_->name + "' namespace='" + core_->ns + "' " +
           (core_->durable  ? "group='" + core_->group + "'"
            : core_->replay ? std::string("replaying")
                            : std::string("tailing")) +
           " next_seq=" + std::to_string(core_->next_seq.load()) +
           (core_->usable() ? "" : " closed") + ">";
  }
  std::shared_ptr<ConsumerCore> live() const {
    if (!core_ || !core_->usable()) {
      if (core_) core_->throw_closed();
      throw_error(Errc::kClosed, "consumer is closed");
    }
    return core_;
  }

 private:
  // Expires the returned ring records, then commits their position.  Thread: GIL held.
  static void commit_locked(const std::shared_ptr<ConsumerCore>& core) {
    ConsumerCore& c = *core;
    if (!c.durable || !c.uncommitted) return;
    c.live.expire_all();
    CoreLock lock(c);
    c.consumer->ring().commit();
    c.uncommitted = false;
  }

  // A tailing consumer on a persisted stream (or on a store whose ring is gone): a
  // ReplayConsumer.  False when the stream is not persisted (or cannot be inspected:
  // Consumer::open reports why).
  static bool open_replay(ConsumerCore& c, const ConsumerOptions& opts, const std::string& data_dir) {
    persist::ReplayOptions ro;
    // "committed" means nothing to a tailing reader: the earliest, as with the ring.
    ro.start = opts.start.kind == StartFrom::Kind::kCommitted ? StartFrom::earliest() : opts.start;
    ro.wait = opts.wait;
    ro.read_only = opts.read_only;
    ro.data_dir = data_dir;
    Result<persist::ReplayConsumer> r = make_error(Errc::kIo, "");
    {
      py::gil_scoped_release nogil;  // opens the store: disk reads
      if (!persist::reads_through_store(c.ns, c.name, data_dir)) return false;
      r = persist::ReplayConsumer::open(c.ns, c.name, ro);
    }
    c.replay = std::make_unique<persist::ReplayConsumer>(unwrap(std::move(r)));
    return true;
  }

  // Raises what a read_batch kept for the next read.  Thread: GIL held.
  static void raise_deferred(ConsumerCore& c) {
    if (!c.deferred) return;
    DeferredError e = std::move(*c.deferred);
    c.deferred.reset();
    if (e.is_gap) throw_gap(e.gap.from, e.gap.to, e.gap.reason);
    if (e.is_evicted) throw_evicted(e.message, e.from, e.to, e.lost);
    throw_lapped(e.message, e.lost);
  }

  // The next record, or None when `timeout` passed (or, with *closed_out, when the
  // consumer was closed meanwhile; or, with `in_batch`, when an error is deferred).
  // Thread: GIL held.
  static py::object read_one(const std::shared_ptr<ConsumerCore>& core,
                             std::optional<std::chrono::nanoseconds> timeout, bool* closed_out,
                             bool in_batch) {
    ConsumerCore& c = *core;
    raise_deferred(c);
    if (c.replay) return read_replay(core, timeout, closed_out, in_batch);
    Deadline deadline(timeout);
    bool first = true;
    for (;;) {
      Record rec;
      ReadStatus st;
      uint64_t lost_before;
      persist::GroupConsumer::Loss loss;
      std::string store_error;
      {
        CoreLock lock(c);
        if (!c.usable()) break;
        lost_before = c.consumer->ring().lost();
        if (first) {
          st = c.consumer->poll(&rec, std::chrono::nanoseconds(0));
        } else {
          const auto slice = deadline.next_slice();
          py::gil_scoped_release nogil;
          st = c.consumer->poll(&rec, slice);
        }
        c.snapshot();
        if (st == ReadStatus::kEvicted || st == ReadStatus::kBeforeOldest) loss = c.consumer->loss();
        if (st == ReadStatus::kCorrupt) store_error = c.consumer->error().message;
        if (st == ReadStatus::kOk) {
          c.uncommitted = true;
          // closed meanwhile: close() has expired the live records already, so copy.
          // A record from the store (after an eviction) lives in the store reader's buffer.
          if (!c.durable || c.copy || !c.usable() || c.consumer->from_store())
            return py::reinterpret_steal<py::object>(new_copied_record(rec));
          return py::reinterpret_steal<py::object>(
              new_ring_record(rec, &c.live, std::shared_ptr<void>(core)));
        }
      }
      switch (st) {
        case ReadStatus::kLapped:
          if (c.raise_on_lap) {
            const uint64_t n = c.lost.load() - lost_before;
            std::string msg = "tailing consumer of stream '" + c.name +
                              "' was overrun by producers: " + std::to_string(n) +
                              " records lost; reading resumes at the oldest record still in the ring";
            if (in_batch) {
              c.deferred = DeferredError{false, {}, std::move(msg), n};
              return py::none();
            }
            throw_lapped(msg, n);
          }
          continue;  // resume at once
        case ReadStatus::kEvicted:
        case ReadStatus::kBeforeOldest: {
          if (loss.lost == 0) continue;  // the store has them: they come next
          const std::string range = std::to_string(loss.from) + ".." + std::to_string(loss.to - 1);
          if (st == ReadStatus::kBeforeOldest || !c.durable) {
            if (!c.durable && !c.raise_on_gap) continue;  // counted in `lost`
            persist::ReplayGap gap{loss.from, loss.from + loss.lost, "no longer in the ring"};
            if (in_batch) {
              c.deferred = DeferredError{true, std::move(gap), {}, 0};
              return py::none();
            }
            throw_gap(gap.from, gap.to, gap.reason);
          }
          std::string msg = "consumer group '" + c.group + "' of stream '" + c.name +
                            "' was evicted (its reader was away longer than the stream's "
                            "consumer_dead_timeout): records " + range + " left the ring: " +
                            std::to_string(loss.lost) + " records lost";
          if (in_batch) {
            c.deferred = DeferredError{false, {}, std::move(msg), loss.lost, true, loss.from, loss.to};
            return py::none();
          }
          throw_evicted(msg, loss.from, loss.to, loss.lost);
        }
        case ReadStatus::kCorrupt:
          if (!store_error.empty())
            throw_error(Errc::kCorrupt, "reading the store of stream '" + c.name + "': " + store_error);
          throw_error(Errc::kCorrupt,
                      "stream '" + c.name + "' holds bytes that no shmbus producer wrote near "
                      "sequence " + std::to_string(c.next_seq.load()) +
                      " (its shared memory was damaged); remove it with "
                      "shmbus.remove(name, force=True)");
        case ReadStatus::kClosed: c.throw_closed();
        default: break;
      }
      first = false;
      if (deadline.passed()) return py::none();
      check_signals();
      if (!c.usable()) break;
    }
    if (closed_out) {
      *closed_out = true;
      return py::none();
    }
    c.throw_closed();
  }

  // read_one() of a replaying consumer.  Every poll runs without the GIL.
  static py::object read_replay(const std::shared_ptr<ConsumerCore>& core,
                                std::optional<std::chrono::nanoseconds> timeout, bool* closed_out,
                                bool in_batch) {
    ConsumerCore& c = *core;
    Deadline deadline(timeout);
    bool first = true;
    for (;;) {
      Record rec;
      persist::ReplayStatus st;
      persist::ReplayGap gap;
      {
        CoreLock lock(c);
        if (!c.usable()) break;
        {
          const auto slice = first ? std::chrono::nanoseconds(0) : deadline.next_slice();
          py::gil_scoped_release nogil;
          st = c.replay->poll(&rec, slice);
        }
        c.snapshot();
        if (st == persist::ReplayStatus::kOk)
          return py::reinterpret_steal<py::object>(new_copied_record(rec));
        if (st == persist::ReplayStatus::kGap) gap = c.replay->gap();
        if (st == persist::ReplayStatus::kError) {
          const Error e = c.replay->error();
          throw_error(e.code, "replaying stream '" + c.name + "': " + e.message);
        }
      }
      if (st == persist::ReplayStatus::kGap) {
        c.gaps.fetch_add(gap.to - gap.from, std::memory_order_relaxed);  // relaxed: a counter
        c.last_gap = gap;
        if (!c.raise_on_gap) continue;  // skipped: go on at once
        if (in_batch) {
          c.deferred = DeferredError{true, std::move(gap), {}, 0};
          return py::none();
        }
        throw_gap(gap.from, gap.to, gap.reason);
      }
      if (st == persist::ReplayStatus::kClosed) c.throw_closed();
      first = false;
      if (deadline.passed()) return py::none();
      check_signals();
      if (!c.usable()) break;
    }
    if (closed_out) {
      *closed_out = true;
      return py::none();
    }
    c.throw_closed();
  }

  std::shared_ptr<ConsumerCore> core_;  // null once closed
};

class ConsumerIterator {
 public:
  ConsumerIterator(py::object consumer, std::optional<std::chrono::nanoseconds> idle,
                   std::optional<uint64_t> max_records)
      : consumer_(std::move(consumer)), idle_(idle), left_(max_records) {}
  py::object next() {
    if (left_ && *left_ == 0) throw py::stop_iteration();
    py::object rec = consumer_.cast<ConsumerHandle&>().next(idle_);
    if (rec.is_none()) throw py::stop_iteration();
    if (left_) --*left_;
    return rec;
  }

 private:
  py::object consumer_;  // the Python Consumer: a closed one ends the iteration
  std::optional<std::chrono::nanoseconds> idle_;
  std::optional<uint64_t> left_;
};

}  // namespace

void bind_consumer(py::module_& m) {
  py::class_<ConsumerIterator>(m, "ConsumerIterator",
                               "Iterator over a Consumer's records (see Consumer.iter()).")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &ConsumerIterator::next);

  py::class_<ConsumerHandle>(m, "Consumer", R"doc(
Consumer(name, *, group=None, start=None, namespace=None, auto_commit=True, copy=False,
         read_only=False, wait="block", raise_on_lap=False, raise_on_gap=False)

Reads every record of a stream (broadcast: each consumer sees all records).

With ``group="name"`` the consumer is *durable*: its position is kept in the stream
under that name, producers never overwrite what it has not consumed, and a new Consumer
with the same group continues where the last one committed (one live holder at a time:
BusyError otherwise; a dead holder's group is taken over at once).  A group nobody
holds stops holding producers back after the stream's consumer_dead_timeout; if
producers then overwrite records it had not read, its next read raises EvictedError (with
``lost``; the read after it goes on at the oldest record left), unless the stream is
persisted: then those records come from the store.  Records
are zero-copy views into the ring.  With ``group=None`` it is an anonymous *tailing*
reader that never holds producers back; if overrun it skips ahead (``lost`` grows, or
LappedError with ``raise_on_lap=True``); its records are copies.

On a *persisted* stream (one with a Persister, or ``shmbus persist``, when the Consumer
opens) a consumer without a group *replays*: records the ring no longer holds come from
the store, then it switches to the live ring with no gap and no duplicate (as the CLI's
``tail`` does); overrun, it goes back to the store instead of losing records
(``replaying``, ``from_store``).  Records that neither the store nor the ring has any
more (deleted by retention, never persisted, corrupt) are a *gap*: skipped and counted
in ``gaps`` (the last in ``last_gap``), or raised as GapError(from_seq, to_seq, reason)
with ``raise_on_gap=True``; either way reading goes on after the gap.  A stream whose
ring is gone (after a reboot) but whose store is in the data dir is read from the store
(``data_dir``: as for Persister), and once the ring is created again, from it.

:param start: None: a durable group continues after its last commit (earliest when
    new), a tailing reader starts at the earliest record (of the store, when
    replaying); "earliest"; "latest" (only records published from now on);
    "committed"; an int sequence number (older than the ring: from the store when
    replaying); a ``datetime`` (the first record published at or after it; a naive
    datetime is local time, like ``datetime.timestamp()``); or
    "@2026-11-25T13:00:00Z" / "@<ns>".
:param auto_commit: commit what was returned at each next poll/read_batch/iteration step
    and at close(); with False call commit() yourself (uncommitted records are read
    again by the group's next consumer).
:param copy: give durable records their own bytes instead of ring views.
:param read_only: map the stream read-only (tailing consumers only).
:param raise_on_lap: tailing on a stream that is not persisted: LappedError when overrun.
:param raise_on_gap: replaying: GapError for a gap instead of skipping it.

Waits release the GIL and Ctrl-C interrupts them.  A Consumer may be used from several
threads (calls are serialized).  A Consumer made before fork() is closed in the child.
An error met by read_batch after it took some records (LappedError, GapError) is raised
by the next read instead, so that those records are returned.
)doc")
      .def(py::init<const std::string&, const py::object&, const py::object&, const py::object&,
                    bool, bool, bool, const std::string&, bool, bool, const py::object&>(),
           py::arg("name"), py::kw_only(), py::arg("group") = py::none(),
           py::arg("start") = py::none(), py::arg("namespace") = py::none(),
           py::arg("auto_commit") = true, py::arg("copy") = false, py::arg("read_only") = false,
           py::arg("wait") = "block", py::arg("raise_on_lap") = false,
           py::arg("raise_on_gap") = false, py::arg("data_dir") = py::none())
      .def("poll", &ConsumerHandle::poll, py::arg("timeout") = py::none(),
           R"doc(poll(timeout=None) -> Record | None

The next record, waiting up to ``timeout`` seconds (None: until one comes; 0: no wait);
None when none came.  A durable record's data is valid until the next poll (see
Record.data).  ClosedError if the consumer is closed, also while waiting.)doc")
      .def("read_batch", &ConsumerHandle::read_batch, py::arg("max_records") = 1000,
           py::arg("timeout") = py::none(), R"doc(read_batch(max_records=1000, timeout=None) -> list[Record]

Waits up to ``timeout`` for a first record, then takes whatever else is there at once, up
to ``max_records``.  Every returned record stays valid until the next read call; [] on
timeout.)doc")
      .def("iter",
           [](py::object self, const py::object& idle_timeout, const py::object& max_records) {
             self.cast<ConsumerHandle&>().live();
             std::optional<uint64_t> max;
             if (!max_records.is_none()) {
               const int64_t n = max_records.cast<int64_t>();
               if (n < 0) throw_error(Errc::kInvalidArgument, "max_records must be >= 0");
               max = static_cast<uint64_t>(n);
             }
             return ConsumerIterator(self, to_timeout(idle_timeout, "idle_timeout"), max);
           },
           py::arg("idle_timeout") = py::none(), py::arg("max_records") = py::none(),
           R"doc(iter(idle_timeout=None, max_records=None) -> Iterator[Record]

Iterates over records.  Stops when no record came for ``idle_timeout`` seconds (None:
never; 0: as soon as the reader has caught up), after ``max_records`` records, or when
the consumer is closed.  ``for rec in consumer`` is ``iter()``: it waits forever (until
close() from another thread, or Ctrl-C).)doc")
      .def("__iter__",
           [](py::object self) {
             self.cast<ConsumerHandle&>().live();
             return ConsumerIterator(self, std::nullopt, std::nullopt);
           })
      .def("seek", &ConsumerHandle::seek, py::arg("start"), R"doc(seek(start) -> None

Moves the consumer to ``start`` (as the constructor's ``start``: "earliest", "latest",
a sequence number, a datetime, "@TIME").  For a durable group this is the explicit way
to rewind or skip it: ``start=`` in the constructor only says where a *new* group
begins; an existing group continues from its committed position.  Records returned
before are expired.)doc")
      .def("commit", &ConsumerHandle::commit, R"doc(commit() -> None

Durable: marks everything returned so far as consumed (the position the group resumes
from, and which producers may overwrite up to).  Expires the records returned so far.
No-op for tailing consumers.)doc")
      .def("close", &ConsumerHandle::close,
           "close() -> None\n\nCommits (with auto_commit), expires records, detaches. "
           "Idempotent; a read waiting in another thread ends with ClosedError.")
      .def_property_readonly("closed", &ConsumerHandle::closed)
      .def_property_readonly("name", [](const ConsumerHandle& h) { return h.info().name; },
                             "The stream's name.")
      .def_property_readonly("namespace", [](const ConsumerHandle& h) { return h.info().ns; },
                             "The resolved namespace.")
      .def_property_readonly("group",
                             [](const ConsumerHandle& h) -> py::object {
                               const auto& c = h.info();
                               if (!c.durable) return py::none();
                               return py::str(c.group);
                             },
                             "The durable group name, or None for a tailing consumer.")
      .def_property_readonly("durable", [](const ConsumerHandle& h) { return h.info().durable; })
      .def_property_readonly("next_seq",
                             [](const ConsumerHandle& h) { return h.info().next_seq.load(); },
                             "Sequence number of the next record to be returned.")
      .def_property_readonly("lost", [](const ConsumerHandle& h) { return h.info().lost.load(); },
                             "Records lost to laps (tailing) or eviction.")
      .def_property_readonly("gaps", [](const ConsumerHandle& h) { return h.info().gaps.load(); },
                             "Sequences skipped: claims abandoned by dead producers, and (a "
                             "replaying consumer) the gaps it skipped (see last_gap).")
      .def_property_readonly("last_gap",
                             [](const ConsumerHandle& h) -> py::object {
                               const auto& g = h.info().last_gap;
                               if (!g) return py::none();
                               return py::make_tuple(g->from, g->to, g->reason);
                             },
                             "A replaying consumer's last gap as (from_seq, to_seq, reason), "
                             "or None.  See GapError.")
      .def_property_readonly("replaying", [](const ConsumerHandle& h) { return h.info().replay != nullptr; },
                             "True for a consumer without a group on a persisted stream: it "
                             "reads from the store what the ring no longer holds.")
      .def_property_readonly("from_store", &ConsumerHandle::from_store,
                             "True while a replaying consumer reads the store (False once it "
                             "reads the live ring; always False when not replaying).")
      .def("__enter__", [](py::object self) {
        self.cast<ConsumerHandle&>().live();
        return self;
      })
      .def("__exit__", [](ConsumerHandle& h, py::handle, py::handle, py::handle) {
        h.close();
        return false;
      })
      .def("__repr__", &ConsumerHandle::repr);
}

}  // namespace shmbus::python
