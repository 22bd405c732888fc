// consumer_read.cc: a Consumer's read loop, one for the ring and the replay.
//
// Reading: a first poll that does not wait, then polls of at most kSlice, with signals
// (Ctrl-C) and close() checked in between.  The mutex is held only for one C++ call
// (plus building the record), so other threads may use the consumer between slices.
// The ring's first poll keeps the GIL (the fast path when data is there); its later
// polls release it.  A replaying consumer's polls never hold the GIL (the store is
// read from disk), and its records are copies.
//
// Each poll's status is turned into one Step (poll_ring, poll_replay): a record, nothing
// yet, go on at once, or an error to raise.  Errors to raise are a lap (raise_on_lap),
// a gap (a replay's with raise_on_gap; a ring's start below its oldest record), or an
// eviction; met inside read_batch after some records were collected, they are kept and
// raised by the next read, so that the records already taken out are not dropped; so is
// any other error a batch meets after its first record (a damaged store segment).
#include "consumer_core.h"
#include "errors.h"

namespace shmbus::python {

namespace {

struct Step {
  enum Kind { kRecord, kNothing, kAgain, kRaise } kind = kNothing;
  py::object record;   // kRecord
  DeferredError error;  // kRaise
};

// The deadline of a poll that does not wait (a first poll, a batch's next record): such
// polls never look at it.
const Deadline& no_wait() {
  static const Deadline d(std::chrono::nanoseconds(0));
  return d;
}

Step raise_step(DeferredError e) { return Step{Step::kRaise, py::object(), std::move(e)}; }

// An error of any other kind, met by a batch after its first record: raised by the next
// read, with this code and message.
Step error_step(Errc code, std::string message) {
  DeferredError e;
  e.is_error = true;
  e.code = code;
  e.message = std::move(message);
  return raise_step(std::move(e));
}

// One poll of a ring consumer (a group, or tailing a stream that is not persisted).
// `more`: a batch's next record (read_more): no wait, and a record leaves the counters'
// snapshot to the caller.  Thread: GIL and mu held.
Step poll_ring(const std::shared_ptr<ConsumerCore>& core, bool first, const Deadline& deadline,
               bool more = false) {
  ConsumerCore& c = *core;
  Record rec;
  ReadStatus st;
  const uint64_t lost_before = c.consumer->ring().lost();
  if (first || more) {
    st = c.consumer->poll(&rec, std::chrono::nanoseconds(0));
  } else {
    const auto slice = deadline.next_slice();
    py::gil_scoped_release nogil;
    st = c.consumer->poll(&rec, slice);
  }
  if (!more || st != ReadStatus::kOk) c.snapshot();
  switch (st) {
    case ReadStatus::kOk:
      c.uncommitted = true;
      // closed meanwhile: close() has expired the live records already, so copy.
      // A record from the store (after an eviction) lives in the store reader's buffer.
      if (!c.durable || c.copy || !c.usable() || c.consumer->from_store())
        return Step{Step::kRecord, py::reinterpret_steal<py::object>(new_copied_record(rec)), {}};
      {
        auto r = py::reinterpret_steal<py::object>(
            new_ring_record(rec, &c.live, std::shared_ptr<void>(core), c.py_owner));
        // Making it may have run the garbage collector (a Record is tracked), and with it
        // code that closed this consumer, whose close() expired its records before this
        // one was linked: a live record of a closed consumer (a review).  A copy then, as
        // above (the bytes are still mapped: the core holds the mapping).
        if (c.usable()) return Step{Step::kRecord, std::move(r), {}};
        expire_record(r.ptr());
        return Step{Step::kRecord, py::reinterpret_steal<py::object>(new_copied_record(rec)), {}};
      }
    case ReadStatus::kLapped: {
      if (!c.raise_on_lap) return Step{Step::kAgain, {}, {}};  // resume at once
      const uint64_t n = c.lost.load() - lost_before;
      return raise_step(DeferredError{false, {}, "tailing consumer of stream '" + c.name +
                                                     "' was overrun by producers: " + std::to_string(n) +
                                                     " records lost; reading resumes at the oldest "
                                                     "record still in the ring",
                                      n});
    }
    case ReadStatus::kEvicted:
    case ReadStatus::kBeforeOldest: {
      const persist::GroupConsumer::Loss loss = c.consumer->loss();
      if (loss.lost == 0) return Step{Step::kAgain, {}, {}};  // the store has them: they come next
      // Told (once raised): the next commit or close says so in the group's slot, or its
      // next holder is told again.
      if (c.durable) c.uncommitted = true;
      if (st == ReadStatus::kBeforeOldest || !c.durable) {
        if (!c.durable && !c.raise_on_gap) return Step{Step::kAgain, {}, {}};  // counted in `lost`
        return raise_step(
            DeferredError{true, persist::ReplayGap{loss.from, loss.from + loss.lost, "no longer in the ring"}, {}, 0});
      }
      const std::string range = std::to_string(loss.from) + ".." + std::to_string(loss.to - 1);
      return raise_step(DeferredError{false, {},
                                      "consumer group '" + c.group + "' of stream '" + c.name +
                                          "' was evicted (its reader was away longer than the stream's "
                                          "consumer_dead_timeout): records " + range + " left the ring: " +
                                          std::to_string(loss.lost) + " records lost",
                                      loss.lost, true, loss.from, loss.to});
    }
    case ReadStatus::kCorrupt:
      if (!c.consumer->error().message.empty()) {
        std::string msg = "reading the store of stream '" + c.name + "': " + c.consumer->error().message;
        if (more) return error_step(Errc::kCorrupt, std::move(msg));  // after a batch's records
        throw_error(Errc::kCorrupt, msg);
      }
      throw_error(Errc::kCorrupt,
                  "stream '" + c.name + "' holds bytes that no shmbus producer wrote near "
                  "sequence " + std::to_string(c.next_seq.load()) +
                  " (its shared memory was damaged); remove it with "
                  "shmbus.remove(name, force=True)");
    case ReadStatus::kClosed: c.throw_closed();
    case ReadStatus::kTimeout:
      if (!more) c.commit_stepped_over();
      return Step{};
    default: return Step{};
  }
}

// One poll of a replaying consumer.  Gaps are counted (gaps, last_gap), then skipped or
// raised (raise_on_gap).  Thread: GIL and mu held (the GIL released while polling).
Step poll_replay(ConsumerCore& c, bool first, const Deadline& deadline, bool more = false) {
  Record rec;
  persist::ReplayStatus st;
  {
    const auto slice = first ? std::chrono::nanoseconds(0) : deadline.next_slice();
    py::gil_scoped_release nogil;
    st = c.replay->poll(&rec, slice);
  }
  c.snapshot();
  switch (st) {
    case persist::ReplayStatus::kOk:
      return Step{Step::kRecord, py::reinterpret_steal<py::object>(new_copied_record(rec)), {}};
    case persist::ReplayStatus::kGap: {
      const persist::ReplayGap& gap = c.replay->gap();
      c.gaps.fetch_add(gap.to - gap.from, std::memory_order_relaxed);  // relaxed: a counter
      c.last_gap = gap;
      // skipped: go on at once.  Numbers nothing was published under (claims aborted or
      // abandoned) are counted but never raised: a ring reader goes past them too.
      if (!c.raise_on_gap || gap.never_published) return Step{Step::kAgain, {}, {}};
      return raise_step(DeferredError{true, gap, {}, 0});
    }
    case persist::ReplayStatus::kError: {
      const Error e = c.replay->error();
      std::string msg = "replaying stream '" + c.name + "': " + e.message;
      if (more) return error_step(e.code, std::move(msg));  // after a batch's records
      throw_error(e.code, msg);
    }
    case persist::ReplayStatus::kClosed: c.throw_closed();
    default: return Step{};
  }
}

}  // namespace

void raise_read_error(DeferredError e) {
  if (e.is_error) throw_error(e.code, e.message);
  if (e.is_gap) throw_gap(e.gap.from, e.gap.to, e.gap.reason);
  if (e.is_evicted) throw_evicted(e.message, e.from, e.to, e.lost);
  throw_lapped(e.message, e.lost);
}

void read_more(const std::shared_ptr<ConsumerCore>& core, size_t max, py::list& out) {
  ConsumerCore& c = *core;
  if (c.deferred || static_cast<size_t>(PyList_GET_SIZE(out.ptr())) >= max) return;
  const Deadline& now = no_wait();
  CoreLock lock(c);
  while (c.usable() && static_cast<size_t>(PyList_GET_SIZE(out.ptr())) < max) {
    Step step = c.replay ? poll_replay(c, true, now, true) : poll_ring(core, true, now, true);
    switch (step.kind) {
      case Step::kRecord:
        if (PyList_Append(out.ptr(), step.record.ptr()) != 0) throw py::error_already_set();
        continue;
      case Step::kAgain: continue;
      case Step::kRaise: c.defer(std::move(step.error)); break;
      case Step::kNothing: break;
    }
    break;
  }
  if (!c.replay) c.snapshot();
}

py::object read_one(const std::shared_ptr<ConsumerCore>& core,
                    std::optional<std::chrono::nanoseconds> timeout, bool* closed_out, bool in_batch,
                    bool commit_first) {
  ConsumerCore& c = *core;
  // Views first (under the GIL), then the commit under the first poll's hold of mu: one
  // lock a step instead of two.
  bool commit = commit_first && c.durable && c.uncommitted;
  if (commit) c.live.expire_all();
  if (c.deferred) {
    DeferredError e = std::move(*c.deferred);
    c.deferred.reset();
    {
      CoreLock lock(c);
      if (commit) {
        c.live.expire_all();  // again under the lock: see the loop below
        c.commit_position();  // (a loss still owed: see defer())
      }
      if (c.consumer) c.consumer->loss_told();
    }
    raise_read_error(std::move(e));
  }
  // Made at the first miss: the first poll does not wait (and a clock read per record
  // would cost as much as the poll).
  std::optional<Deadline> deadline;
  bool first = true;
  for (;;) {
    Step step;
    {
      CoreLock lock(c);
      if (commit) {
        commit = false;
        // Again under the lock: waiting for it let go of the GIL, and a read in another
        // thread may have returned a record meanwhile, which this commit covers (a review:
        // its view outlived the commit and showed another record once its bytes were
        // reused).  Cheap when none did.
        c.live.expire_all();
        c.commit_position();
      }
      if (!c.usable()) break;
      const Deadline& d = deadline ? *deadline : no_wait();
      step = c.replay ? poll_replay(c, first, d) : poll_ring(core, first, d);
    }
    switch (step.kind) {
      case Step::kRecord: return std::move(step.record);
      case Step::kAgain: continue;
      case Step::kRaise:
        if (in_batch) {
          CoreLock lock(c);
          c.defer(std::move(step.error));
          return py::none();
        }
        raise_read_error(std::move(step.error));
      case Step::kNothing: break;
    }
    if (first) {
      first = false;
      deadline.emplace(timeout);
    }
    if (deadline->passed()) return py::none();
    check_signals();
    if (!c.usable()) break;
  }
  if (closed_out) {
    *closed_out = true;
    return py::none();
  }
  c.throw_closed();
}

}  // namespace shmbus::python
