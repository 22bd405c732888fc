// producer.cc: shmbus.Producer and shmbus.Claim.
//
// The Python Producer holds a shared ProducerCore; claims and claim buffers hold it too,
// so the C++ Producer (and its mapping) lives until the last of them is gone.  close()
// makes the handle unusable at once and aborts open claims; the C++ Producer is closed
// (unregistered) when the last reference drops, which is at close() unless a numpy array
// or slice still views a claim buffer.
//
// Waiting: every publish runs without the GIL, so a full ring never stops the other
// Python threads (a consumer thread in this process can make room).  The C++ producer
// is opened with a full_timeout of at most kPublishSlice; the loop here retries full
// slices until the Python full_timeout, checking signals and close() in between.
#include <algorithm>
#include <atomic>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include <pybind11/stl.h>

#include "bindings.h"
#include "shmbus/detail/stream_control.h"
#include "shmbus/persist/persister.h"
#include "errors.h"
#include "fastcall.h"
#include "views.h"

namespace shmbus::python {

namespace {

class ClaimHandle;

struct ProducerCore {
  // ---- guarded by mu (blocked on only without the GIL) ----
  std::unique_ptr<Producer> producer;
  std::mutex mu;
  // ---- guarded by the GIL ----
  std::set<ClaimHandle*> claims;   // open claims, aborted by close()
  // ---- set once ----
  std::atomic<bool> closed{false};
  const uint64_t generation = fork_generation();
  std::string ns, name;
  uint64_t max_record = 0, capacity = 0;
  bool wait_when_full = true;
  std::optional<std::chrono::nanoseconds> full_timeout;  // nullopt: wait forever
  std::chrono::nanoseconds slice{0};  // the C++ Producer's full_timeout: one attempt's wait

  ~ProducerCore() {
    // In a fork child the producer is the parent's: closing it would unregister it.
    if (generation != fork_generation()) (void)producer.release();
  }
  bool usable() const noexcept { return !closed && generation == fork_generation(); }
  [[noreturn]] void throw_closed() const {
    throw_error(Errc::kClosed, generation != fork_generation()
                                   ? "producer for stream '" + name +
                                         "' was opened before fork(): open a new one in this process"
                                   : "producer for stream '" + name + "' is closed");
  }

  // Runs fn(Producer&) -> (PubStatus, T) under mu without the GIL, retrying while the
  // ring is full and the policy is to wait.  Thread: GIL held on entry and exit.
  template <class Fn>
  auto run_waiting(Fn fn) {
    // Made when the ring was first found full, for what is left after the slice that
    // attempt waited: a clock read per publish would cost as much as the publish.
    std::optional<Deadline> deadline;
    for (;;) {
      if (!usable()) throw_closed();  // closed by another thread, or re-entrantly
      decltype(fn(*producer)) r;
      {
        py::gil_scoped_release nogil;
        std::lock_guard lock(mu);
        r = fn(*producer);
      }
      if (r.first != PubStatus::kFull || !wait_when_full) return r;
      if (!deadline)
        deadline.emplace(full_timeout ? std::optional(std::max(*full_timeout - slice, std::chrono::nanoseconds(0)))
                                      : std::nullopt);
      if (deadline->passed()) return r;
      check_signals();
      if (!usable()) throw_closed();
    }
  }

  // Runs fn() under mu: try_lock with the GIL, else block without it.  fn must not
  // touch Python.  Thread: GIL held.
  template <class Fn>
  auto locked(Fn fn) {
    if (mu.try_lock()) {
      std::lock_guard lock(mu, std::adopt_lock);
      return fn();
    }
    py::gil_scoped_release nogil;
    std::lock_guard lock(mu);
    return fn();
  }

  [[noreturn]] void throw_too_large(const std::string& size) const {
    throw_error(Errc::kTooLarge, "record of " + size + " bytes is larger than max_record " +
                                     std::to_string(max_record) + " of stream '" + name + "'");
  }
  [[noreturn]] void throw_status(PubStatus s, size_t size, uint64_t seq) const {
    switch (s) {
      case PubStatus::kTooLarge: throw_too_large(std::to_string(size));
      case PubStatus::kFull: {
        // A ring removed under this producer (rm --force) fills once its readers are gone:
        // the stream of that name now (stat, its persister) is not what holds it (a
        // review: the message sent the user to them).  Two system calls, on this error only.
        if (const NameState st = producer->name_state(); st != NameState::kSame)
          throw_error(Errc::kFull,
                      "stream '" + name + "' is full: it was removed" +
                          (st == NameState::kReplaced ? " and created again" : "") +
                          " (shmbus rm --force) while this producer had it open, and nobody reads the "
                          "removed ring; open a new Producer");
        std::string why;
        if (auto info = stream_info(ns, name); info) why = explain_held_back(info.value());
        throw_error(Errc::kFull,
                    "stream '" + name + "' is full" +
                        (wait_when_full ? " and no room came within full_timeout" : "") + ": " +
                        (why.empty() ? "a durable consumer is behind or dead (see shmbus.stat('" + name + "'))"
                                     : why));
      }
      case PubStatus::kAbandoned:
        throw_abandoned("record " + std::to_string(seq) + " of stream '" + name +
                        "' was declared abandoned by another process before it was committed "
                        "(commit within the stream's abandon timeout)");
      case PubStatus::kClosed: throw_closed();
      case PubStatus::kNotPersisted:
        throw_not_persisted("record " + std::to_string(seq) + " of stream '" + name +
                                "' was not persisted: the persister recorded it as lost (the "
                                "stream lets producers go on while no persister runs)",
                            seq);
      case PubStatus::kCorrupt:
        throw_error(Errc::kCorrupt, "stream '" + name + "' is damaged (its cursors do not add up, or "
                                    "its shared memory shrank): remove it and create it again");
      case PubStatus::kTimeout:  // only from wait_durable: see ProducerHandle::wait_durable
      case PubStatus::kOk: break;
    }
    throw_error(Errc::kIo, "unexpected publish status");
  }
};

// ---- Claim ----------------------------------------------------------------------------

class ClaimHandle {
 public:
  ClaimHandle(std::shared_ptr<ProducerCore> core, std::unique_ptr<Claim> claim)
      : core_(std::move(core)), claim_(std::move(claim)) {
    seq_ = claim_->seq();
    size_ = claim_->data().size();
    buffer_ = py::reinterpret_steal<py::object>(
        new_claim_buffer(claim_->data(), std::shared_ptr<void>(core_)));
    core_->claims.insert(this);
  }
  ClaimHandle(const ClaimHandle&) = delete;
  ClaimHandle& operator=(const ClaimHandle&) = delete;
  ~ClaimHandle() { finish(false); }

  uint64_t seq() const noexcept { return seq_; }
  size_t size() const noexcept { return size_; }
  bool done() const noexcept { return !claim_; }

  py::object data() {
    if (!claim_) throw_done();
    // In a child of fork() the claim is its parent's (commit() leaves it alone): no view
    // of it either, through which the child's writes would land in the parent's record.
    if (core_->generation != fork_generation()) core_->throw_closed();
    return py::reinterpret_steal<py::object>(claim_buffer_view(buffer_.ptr()));
  }

  // size: None commits the whole claim, else its first `size` bytes.
  uint64_t commit(const py::object& size) {
    if (!claim_) throw_done();
    size_t n = size_;
    if (!size.is_none()) {
      if (!is_index(size)) throw py::type_error("commit size must be an int or None");
      // Converted once (its __index__ is user code, which may finish this claim or close
      // the producer: checked again after it, as it crashed here; a review).  Nothing
      // after runs user code: `i` is an int.
      const py::int_ i = py::reinterpret_steal<py::int_>(PyNumber_Index(size.ptr()));
      if (!i) throw py::error_already_set();
      if (!claim_) throw_done();
      if (py::int_(0) > i || i > py::int_(size_))
        throw_error(Errc::kInvalidArgument, "commit size must be from 0 to the claim's size " +
                                                std::to_string(size_) + ", not " +
                                                std::string(py::str(static_cast<const py::handle&>(i))));
      n = i.cast<size_t>();
    }
    if (!core_->usable()) {
      auto core = core_;
      finish(false);
      core->throw_closed();
    }
    auto core = core_;
    PubStatus s = finish(true, n);
    if (s != PubStatus::kOk) core->throw_status(s, size_, seq_);
    size_ = n;
    return seq_;
  }

  void abort() {
    if (!claim_) throw_done();
    finish(false);
  }

  // The old `with producer.claim(n) as buf: buf[...] = ...` spelling (the block gave the
  // memoryview): indexing the claim still reaches data, with a DeprecationWarning.
  static void warn_indexing() {
    if (PyErr_WarnEx(PyExc_DeprecationWarning,
                     "indexing a shmbus.Claim is deprecated: `with producer.claim(n) as claim` "
                     "now gives the claim; write through claim.data",
                     2) != 0)
      throw py::error_already_set();
  }
  py::object get_item(const py::object& key) {
    warn_indexing();
    return data()[key];
  }
  void set_item(const py::object& key, const py::object& value) {
    warn_indexing();
    data()[key] = value;
  }
  bool exit(py::handle exc_type, py::handle, py::handle) {
    if (!claim_) return false;  // committed or aborted inside the block
    if (exc_type.is_none()) commit(py::none());
    else finish(false);
    return false;
  }

  [[noreturn]] void throw_done() const {
    throw_error(Errc::kClosed, closed_by_producer_
                                   ? "the producer was closed, which aborted this claim"
                                   : "the claim was already committed or aborted");
  }

  // close() of the producer: abort.
  void abort_for_close() noexcept {
    closed_by_producer_ = true;
    (void)finish(false);
  }

  // Commits or aborts, expires the buffer and lets go of the core.  Everything is taken
  // out of the handle before the lock, which may release the GIL: another thread that
  // finishes it meanwhile (commit() against the producer's close(), or abort()) finds it
  // done instead of finishing the same claim twice (a crash).  Thread: GIL held.
  PubStatus finish(bool commit, size_t n = ~size_t{0}) noexcept {
    if (!claim_) return PubStatus::kClosed;
    if (n == ~size_t{0}) n = size_;
    std::unique_ptr<Claim> claim = std::move(claim_);
    std::shared_ptr<ProducerCore> core = std::move(core_);
    core->claims.erase(this);
    // Invalidate the Python view first: no write may land after the commit.
    expire_claim_buffer(buffer_.ptr());
    buffer_ = py::object();
    PubStatus s = PubStatus::kClosed;
    if (core->generation != fork_generation()) {
      (void)claim.release();  // the parent's claim: leave it alone
    } else {
      Claim* c = claim.get();
      s = core->locked([&] { return commit ? c->commit(n) : c->abort(); });
    }
    return s;
  }

 private:
  std::shared_ptr<ProducerCore> core_;   // declared first: destroyed after claim_
  std::unique_ptr<Claim> claim_;         // null once committed or aborted
  py::object buffer_;                    // the _ClaimBuffer behind data()
  uint64_t seq_ = 0;
  size_t size_ = 0;
  bool closed_by_producer_ = false;
};

// ---- Producer -------------------------------------------------------------------------

class ProducerHandle {
 public:
  ProducerHandle(const std::string& name, const py::object& ns, const std::string& when_full,
                 const py::object& full_timeout, const std::string& wait) {
    auto core = std::make_shared<ProducerCore>();
    core->ns = namespace_of(ns);
    core->name = name;
    if (when_full != "wait" && when_full != "fail")
      throw_error(Errc::kInvalidArgument,
                  "when_full must be 'wait' or 'fail', not '" + when_full + "'");
    core->wait_when_full = when_full == "wait";
    core->full_timeout = to_timeout(full_timeout, "full_timeout");
    ProducerOptions opts;
    opts.wait = to_wait_strategy(wait);
    opts.when_full = core->wait_when_full ? FullPolicy::kWait : FullPolicy::kFail;
    // Slices that divide full_timeout evenly, so that the waits add up to it.
    opts.full_timeout = kPublishSlice;
    if (core->full_timeout) {
      const auto t = *core->full_timeout;
      const auto n = std::max<int64_t>(1, (t + kPublishSlice - std::chrono::nanoseconds(1)) / kPublishSlice);
      opts.full_timeout = t / n;
    }
    core->slice = opts.full_timeout;
    Result<Producer> r = make_error(Errc::kIo, "");
    {
      py::gil_scoped_release nogil;  // open may wait for a creator still at work
      r = Producer::open(core->ns, name, opts);
    }
    core->producer = std::make_unique<Producer>(unwrap(std::move(r)));
    core->max_record = core->producer->max_record();
    core->capacity = core->producer->capacity();
    core_ = std::move(core);
  }
  ProducerHandle(const ProducerHandle&) = delete;
  ProducerHandle& operator=(const ProducerHandle&) = delete;
  ~ProducerHandle() { close(); }

  uint64_t publish(py::handle data, uint32_t type) {
    InCall in(*this);
    ProducerCore& c = in.core();
    BufferArg buf(data);
    if (buf.size() > c.max_record) c.throw_status(PubStatus::kTooLarge, buf.size(), 0);
    Bytes bytes = buf.bytes();
    auto r = c.run_waiting([&](Producer& p) {
      PubResult pr = p.publish(bytes, type);
      return std::pair{pr.status, pr.seq};
    });
    if (r.first != PubStatus::kOk) c.throw_status(r.first, buf.size(), r.second);
    return r.second;
  }

  uint64_t publish_batch(py::handle payloads, uint32_t type) {
    InCall in(*this);
    ProducerCore& c = in.core();
    if (PyBytes_Check(payloads.ptr()) || PyByteArray_Check(payloads.ptr()) ||
        PyMemoryView_Check(payloads.ptr()) || PyUnicode_Check(payloads.ptr()))
      throw py::type_error("publish_batch() takes an iterable of bytes-like objects (one per "
                           "record); to publish one record use publish()");
    std::vector<BufferArg> bufs;
    Py_ssize_t hint = PyObject_LengthHint(payloads.ptr(), 16);
    if (hint < 0) throw py::error_already_set();
    bufs.reserve(static_cast<size_t>(hint));
    for (py::handle item : py::iter(payloads)) bufs.emplace_back(item);
    std::vector<Bytes> spans;
    spans.reserve(bufs.size());
    uint64_t total = 0;
    for (const BufferArg& b : bufs) {
      if (b.size() > c.max_record) c.throw_status(PubStatus::kTooLarge, b.size(), 0);
      spans.push_back(b.bytes());
      total += b.size();
    }
    auto r = c.run_waiting([&](Producer& p) {
      PubResult pr = p.publish_batch(spans, type);
      return std::pair{pr.status, pr.seq};
    });
    if (r.first == PubStatus::kTooLarge)
      throw_error(Errc::kTooLarge,
                  "batch of " + std::to_string(spans.size()) + " records (" +
                      std::to_string(total) + " payload bytes) does not fit in half the ring of "
                      "stream '" + c.name + "' (" + std::to_string(c.capacity / 2) +
                      " bytes including a 32-byte header per record): split it");
    if (r.first != PubStatus::kOk) c.throw_status(r.first, total, r.second);
    return r.second;
  }

  uint64_t publish_durable(py::handle data, uint32_t type, const py::object& timeout) {
    auto t = to_timeout(timeout, "timeout");  // checked before anything is published
    const uint64_t seq = publish(data, type);
    wait_for_durable(seq, t);
    return seq;
  }

  void wait_durable(int64_t seq, const py::object& timeout) {
    if (seq < 0) throw_error(Errc::kInvalidArgument, "seq must be >= 0");
    wait_for_durable(static_cast<uint64_t>(seq), to_timeout(timeout, "timeout"));
  }

  // Waits in slices without the GIL and without mu: the C++ wait_durable only reads the
  // stream header, so publishes from other threads go on meanwhile; the core (and so
  // the C++ Producer) is kept alive by `core` even if another thread closes the handle.
  void wait_for_durable(uint64_t seq, std::optional<std::chrono::nanoseconds> timeout) {
    live();
    std::shared_ptr<ProducerCore> core = core_;
    Deadline deadline(timeout);
    // A stream no persister ever attached to is said after the grace a starting one
    // takes to register (as `shmbus pub --sync`), not at the timeout: a loop of
    // publish_durable took 10 s per record there (a review).
    const auto started = std::chrono::steady_clock::now();
    bool asked = false;
    const auto not_persisted = [&] {
      auto ctl = StreamControl::open(core->ns, core->name, true);
      return ctl && !ctl->persist();
    };
    for (;;) {
      PubStatus s;
      {
        py::gil_scoped_release nogil;
        s = core->producer->wait_durable(seq, deadline.next_slice());
      }
      if (s == PubStatus::kOk) return;
      if (s != PubStatus::kTimeout) core->throw_status(s, 0, seq);
      bool never = false;
      if (!asked && std::chrono::steady_clock::now() - started >= persist::kPersisterRegisterGrace) {
        asked = true;
        never = not_persisted();
      }
      if (never || deadline.passed()) {
        std::string why = "is a persister running (shmbus.Persister, or `shmbus persist " + core->name + "`)?";
        if (never || not_persisted())
          why = "the stream is not persisted: start a persister (shmbus.Persister('" + core->name +
                "'), or `shmbus persist " + core->name + "`)";
        throw_durable_timeout("record " + std::to_string(seq) + " of stream '" + core->name +
                                  "' was not durable" + (never ? std::string(" (no persister attached within 1 s)")
                                                               : std::string(" in time")) + ": " + why,
                              seq);
      }
      check_signals();
      if (!core->usable()) core->throw_closed();
    }
  }

  std::unique_ptr<ClaimHandle> claim(const py::object& size_obj, uint32_t type) {
    // Any int: one larger than the stream takes is RecordTooLargeError, as a publish() of
    // that many bytes would be (2**70 raised pybind11's "incompatible function arguments"
    // TypeError: a review).  Converted first: __index__ may run code (InCall looks after).
    if (!is_index(size_obj))
      throw py::type_error("claim size must be an int, not " +
                           std::string(py::str(py::type::of(size_obj).attr("__name__"))));
    const py::int_ big = py::reinterpret_steal<py::int_>(PyNumber_Index(size_obj.ptr()));
    if (!big) throw py::error_already_set();
    InCall in(*this);
    ProducerCore& c = in.core();
    if (py::int_(0) > big) throw_error(Errc::kInvalidArgument, "claim size must be >= 0");
    // (An int of more than 4300 digits has no str() in Python 3.11: said as a bound.)
    if (big > py::int_(c.max_record))
      c.throw_too_large(big > py::int_(std::numeric_limits<uint64_t>::max())
                            ? std::string("more than 2**64 - 1")
                            : py::str(static_cast<const py::handle&>(big)).cast<std::string>());
    const auto size = big.cast<uint64_t>();
    auto claim = std::make_unique<Claim>();
    auto r = c.run_waiting([&](Producer& p) {
      PubStatus s = PubStatus::kOk;
      *claim = p.claim(static_cast<size_t>(size), type, &s);
      return std::pair{s, 0};
    });
    if (r.first != PubStatus::kOk) c.throw_status(r.first, static_cast<size_t>(size), 0);
    if (!c.usable()) {  // closed while it waited: not an open claim on a closed producer
      (void)c.locked([&] { return claim->abort(); });
      c.throw_closed();
    }
    return std::make_unique<ClaimHandle>(core_, std::move(claim));
  }

  void close() {
    if (!core_ || core_->closed) return;
    core_->closed = true;  // calls in flight end with ClosedError after their slice
    // One at a time from the set: an abort may release the GIL, and another thread may
    // finish (and free) any other claim meanwhile; each finish leaves the set first.  The
    // set only shrinks now (claim() refuses a closed core), and `core` keeps it alive
    // should the last call in flight let go of core_ meanwhile.
    const std::shared_ptr<ProducerCore> core = core_;
    while (!core->claims.empty()) (*core->claims.begin())->abort_for_close();
    // The C++ Producer closes when the core's last reference goes: here, unless a call in
    // flight still uses it (then when that call returns, see InCall) or a claim buffer
    // is still exported.
    if (calls_ == 0) core_.reset();
  }

  bool closed() const noexcept { return !core_ || !core_->usable(); }
  std::string name_state() {
    InCall in(*this);
    ProducerCore& c = in.core();
    return name_state_text(c.locked([&] { return c.producer->name_state(); }));
  }
  const ProducerCore& info() const {
    if (!core_) throw_error(Errc::kClosed, "producer is closed");
    return *core_;
  }
  std::string repr() const {
    if (!core_) return "<shmbus.Producer closed>";
    return "<shmbus.Producer stream='" + core_->name + "' namespace='" + core_->ns + "'" +
           (core_->usable() ? "" : " closed") + ">";
  }
  ProducerCore& live() {
    if (!core_ || !core_->usable()) {
      if (core_) core_->throw_closed();
      throw_error(Errc::kClosed, "producer is closed");
    }
    return *core_;
  }

 private:
  // A call that releases the GIL while it uses the core (publish, publish_batch, claim).
  // close() from another thread meanwhile marks the core closed and leaves it to the last
  // such call to let go of: the C++ Producer, and the mutex the call holds, outlive it
  // (they were destroyed under it: a crash in Producer::publish).  Counted under the GIL,
  // so no atomic instruction per publish.  Thread: GIL held.
  class InCall {
   public:
    explicit InCall(ProducerHandle& h) : h_(h), c_(h.live()) { ++h_.calls_; }
    ~InCall() {
      if (--h_.calls_ == 0 && h_.core_ && h_.core_->closed) h_.core_.reset();
    }
    InCall(const InCall&) = delete;
    InCall& operator=(const InCall&) = delete;
    ProducerCore& core() const noexcept { return c_; }

   private:
    ProducerHandle& h_;
    ProducerCore& c_;
  };

  std::shared_ptr<ProducerCore> core_;  // null once closed (and no call in flight)
  int calls_ = 0;                       // calls in flight (InCall); guarded by the GIL
};

// A record's `type` argument, as publish()'s fast path reads it (uint32_arg): TypeError
// for what is no int, InvalidArgumentError outside 0..2**32 - 1 (pybind11's uint32_t
// caster raised "incompatible function arguments", a TypeError: a review).
uint32_t type_arg(const char* function, const py::object& v) {
  uint32_t type = 0;
  if (!uint32_arg(function, "type", v.ptr(), &type)) throw py::error_already_set();
  return type;
}

// publish() as a METH_FASTCALL method (see fastcall.h): pybind11's dispatch was about
// 150 of its 220 ns a call here.  Same arguments, same errors.
PyObject* publish_fast(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) noexcept {
  static const char* const kNames[] = {"data", "type"};
  PyObject* a[2];
  if (!parse_fastcall("publish", args, nargs, kwnames, kNames, 2, 1, a)) return nullptr;
  uint32_t type = 0;
  if (a[1] && !uint32_arg("publish", "type", a[1], &type)) return nullptr;
  ProducerHandle* h = self_of<ProducerHandle>(self);
  if (!h) return nullptr;
  try {
    return PyLong_FromUnsignedLongLong(h->publish(a[0], type));
  } catch (...) {
    set_error_from_current_exception();
    return nullptr;
  }
}

PyMethodDef publish_def = {"publish", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(publish_fast)),
                           METH_FASTCALL | METH_KEYWORDS, nullptr};

}  // namespace

void bind_producer(py::module_& m) {
  py::class_<ClaimHandle>(m, "Claim", R"doc(
A reserved, not yet committed record: fill ``data`` in place, then commit or abort.

Made by :meth:`Producer.claim`.  As a context manager it commits when the block ends
normally and aborts (the record becomes a gap that readers skip) when the block raises::

    claim = producer.claim(128, type=1)   # room for the largest message
    claim.data[:5] = b"hello"             # data: a writable memoryview into the ring
    claim.commit(5)                       # the record holds these 5 bytes

    with producer.claim(128, type=1) as claim:  # the claim itself
        claim.data[:5] = b"hello"
        claim.commit(5)                         # optional: the end of the block commits
                                                # all 128 bytes if nothing did before

Leaving the block commits the whole claim unless it was committed or aborted inside it;
an exception aborts it (and propagates).  Releases up to 0.1 gave the memoryview
(``as buf: buf[:] = ...``): indexing the claim still works, with a DeprecationWarning.

Commit quickly: readers wait behind an uncommitted claim, and after the stream's abandon
timeout (1 s by default) they declare it dead; a later commit() then raises
AbandonedError.  After commit/abort the memoryview is released (writing through it raises
ValueError); numpy arrays and memoryview slices made from it cannot be revoked: they must
not be written to any more (they would overwrite later records).
)doc")
      .def_property_readonly("seq", &ClaimHandle::seq, "Sequence number the record will have.")
      .def_property_readonly("size", &ClaimHandle::size, "Payload size in bytes.")
      .def_property_readonly("done", &ClaimHandle::done, "True once committed or aborted.")
      .def_property_readonly("data", &ClaimHandle::data,
                             "Writable memoryview of the payload (ClosedError once done).")
      .def("commit", &ClaimHandle::commit, py::arg("size") = py::none(),
           "commit(size=None) -> int\n\nPublishes the record: the whole claim, or its first "
           "``size`` bytes (a claim sized for the largest message); returns its sequence "
           "number.  The claim's memoryview is released.")
      .def("abort", &ClaimHandle::abort, "abort() -> None\n\nTurns the record into a gap.")
      .def("__enter__", [](py::object self) {
        if (self.cast<ClaimHandle&>().done()) self.cast<ClaimHandle&>().throw_done();
        return self;
      })
      .def("__len__", &ClaimHandle::size)
      .def("__getitem__", &ClaimHandle::get_item)
      .def("__setitem__", &ClaimHandle::set_item)
      .def("__exit__", &ClaimHandle::exit)
      .def("__repr__", [](const ClaimHandle& h) {
        return "<shmbus.Claim seq=" + std::to_string(h.seq()) + " size=" +
               std::to_string(h.size()) + (h.done() ? " done" : "") + ">";
      });

  py::class_<ProducerHandle>(m, "Producer", R"doc(
Producer(name, *, namespace=None, when_full="wait", full_timeout=10.0, wait="block")

Publishes records to an existing stream.  Any number of producers, in any processes, may
publish to one stream; each record gets the next sequence number.

:param name: the stream.
:param namespace: None -> $SHMBUS_NAMESPACE -> "default".
:param when_full: "wait" for room (up to ``full_timeout`` seconds; None = forever) or
    "fail" at once; either way FullError when there is no room.
:param wait: how to wait for room: "block" (futex), "yield" or "spin".

Waits never hold the GIL, and Ctrl-C interrupts them.  One Producer may be shared by
threads (calls are serialized); a Producer made before fork() is closed in the child.
Use it as a context manager, or call close().
)doc")
      .def(py::init<const std::string&, const py::object&, const std::string&,
                    const py::object&, const std::string&>(),
           py::arg("name"), py::kw_only(), py::arg("namespace") = py::none(),
           py::arg("when_full") = "wait", py::arg("full_timeout") = 10.0,
           py::arg("wait") = "block")
      .def("publish", &ProducerHandle::publish, py::arg("data"), py::arg("type") = 0,
           R"doc(publish(data, type=0) -> int

Copies ``data`` (any C-contiguous buffer: bytes, bytearray, memoryview, numpy array) into
the stream as one record with the 32-bit ``type`` tag; returns its sequence number.
RecordTooLargeError (a ValueError) above ``max_record``; FullError when no room came.)doc")
      .def(
          "publish_batch",
          [](ProducerHandle& h, py::handle payloads, const py::object& type) {
            return h.publish_batch(payloads, type_arg("publish_batch", type));
          },
          py::arg("payloads"), py::arg("type") = 0, R"doc(publish_batch(payloads, type=0) -> int

Publishes an iterable of buffers as consecutive records in one step (one reservation);
returns the first sequence number (for an empty batch: the stream's next sequence, and
nothing is published).  The whole batch must fit in half the ring.)doc")
      .def(
          "publish_durable",
          [](ProducerHandle& h, py::handle data, const py::object& type, const py::object& timeout) {
            return h.publish_durable(data, type_arg("publish_durable", type), timeout);
          },
          py::arg("data"), py::arg("type") = 0, py::arg("timeout") = 10.0,
           R"doc(publish_durable(data, type=0, timeout=10.0) -> int

publish(), then wait_durable(): returns the record's sequence number once the stream's
persister has made it durable (a persisted stream: see Persister).  TimeoutError after
``timeout`` seconds (None: no limit), with ``seq`` set: the record *is* published, only
not yet durable.  Waits without the GIL; Ctrl-C interrupts it.  One durability wait per
record is slow (a flush each, unless many producers wait at once): for throughput publish
many records, then wait_durable() for the last one.)doc")
      .def("wait_durable", &ProducerHandle::wait_durable, py::arg("seq"), py::arg("timeout") = 10.0,
           R"doc(wait_durable(seq, timeout=10.0) -> None

Waits until record ``seq`` (and so every record before it) is durable in the stream's
store.  TimeoutError (with ``seq``) after ``timeout`` seconds (None: no limit): no
persister is running, or it is behind.  Other threads may publish through this Producer
meanwhile.)doc")
      // (No keep_alive: pybind11's link is invisible to the garbage collector, so a claim
      // kept on its producer would keep both for good, the claim open and readers stalled
      // behind it: a review.  A collected Producer aborts its claims; documented.)
      .def(
          "claim",
          [](ProducerHandle& h, const py::object& size, const py::object& type) {
            return h.claim(size, type_arg("claim", type));
          },
          py::arg("size"), py::arg("type") = 0,
           R"doc(claim(size, type=0) -> Claim

Reserves ``size`` bytes in the ring for zero-copy filling; see :class:`Claim`.  The Claim
does not keep its Producer alive: a Producer collected (or closed) aborts its open claims,
and the claim then raises ClosedError.)doc")
      .def("close", &ProducerHandle::close,
           "close() -> None\n\nAborts open claims and detaches. Idempotent.")
      .def_property_readonly("closed", &ProducerHandle::closed)
      .def_property_readonly("name_state", &ProducerHandle::name_state,
                             "'same'; 'removed' once the stream was removed (``shmbus rm --force``); "
                             "'replaced' once removed and created again.  A producer keeps the ring it "
                             "opened: publish() still succeeds there, but no new reader sees those "
                             "records.  Two system calls: ask at idle moments, not per record.")
      .def_property_readonly("name", [](const ProducerHandle& h) { return h.info().name; },
                             "The stream's name.")
      .def_property_readonly("namespace", [](const ProducerHandle& h) { return h.info().ns; },
                             "The resolved namespace.")
      .def_property_readonly("max_record",
                             [](const ProducerHandle& h) { return h.info().max_record; },
                             "Largest payload in bytes.")
      .def_property_readonly("capacity", [](const ProducerHandle& h) { return h.info().capacity; },
                             "Ring size in bytes.")
      .def("__enter__", [](py::object self) {
        self.cast<ProducerHandle&>().live();
        return self;
      })
      .def("__exit__", [](ProducerHandle& h, py::handle, py::handle, py::handle) {
        h.close();
        return false;
      })
      .def("__repr__", &ProducerHandle::repr);
  install_fastcall(m.attr("Producer"), publish_def);
}

}  // namespace shmbus::python
