// consumer.cc: shmbus.Consumer (the handle: its methods and the pybind registration) and
// its iterator.  The state is a ConsumerCore (consumer_core.h: opening, locking) and the
// read loop is read_one() (consumer_read.cc), one for the ring and the replay.
//
// A consumer without a group on a persisted stream replays (persist::open_tail decides):
// it reads from the store what the ring no longer has and lands on the live ring (as
// the CLI's `tail` does).  Gaps it reports are skipped and counted, or raised as
// GapError (raise_on_gap).  A ring consumer that is a durable group evicted while away
// (or a start below the oldest record) reads from the store what the ring lost, on a
// persisted stream; what is lost for good raises EvictedError (a group) or GapError.
#include <algorithm>
#include <memory>

#include "bindings.h"
#include "consumer_core.h"
#include "errors.h"
#include "fastcall.h"

namespace shmbus::python {

namespace {

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
    opts.auto_commit = false;  // committed here: see consumer_core.h
    opts.read_only = read_only;
    core->auto_commit = auto_commit;
    core->copy = copy;
    core->raise_on_lap = raise_on_lap;
    core->raise_on_gap = raise_on_gap;
    open_consumer(*core, opts, path_arg(data_dir, "data_dir"));
    core->snapshot();
    core_ = std::move(core);
  }
  ConsumerHandle(const ConsumerHandle&) = delete;
  ConsumerHandle& operator=(const ConsumerHandle&) = delete;
  // Never closed (no close(), no `with`): closed here, with the commit close() makes.  A
  // teardown cannot tell a script that returned from one that died of an exception (not
  // committing here made every script that takes a record a run and exits without
  // close() read the same record for ever: review 4); `with` tells them apart.
  ~ConsumerHandle() {
    if (core_) core_->py_owner = nullptr;  // (records of it, if any, are expired below)
    try {
      close();
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("shmbus.Consumer.__del__");
    }
  }

  // Makes this handle's Python object the owner of the records it hands out (see
  // ConsumerCore::py_owner): found once, by pybind11's registry of instances.
  void own(const std::shared_ptr<ConsumerCore>& core) {
    if (!core->py_owner) core->py_owner = py::cast(this, py::return_value_policy::reference).ptr();
  }

  py::object poll(const py::object& timeout) {
    InCall in(live());
    const auto& core = in.core();
    own(core);
    auto t = to_timeout(timeout, "timeout");
    return read_one(core, t, nullptr, false, core->auto_commit);
  }

  py::list read_batch(const py::object& max_records_obj, const py::object& timeout) {
    const uint64_t max_records = count_arg(max_records_obj, "max_records");  // (before InCall: __index__ runs code)
    InCall in(live());
    const auto& core = in.core();
    own(core);
    auto t = to_timeout(timeout, "timeout");
    py::list out;
    py::object rec = read_one(core, t, nullptr, false, core->auto_commit);
    if (rec.is_none()) return out;
    out.append(rec);
    read_more(core, static_cast<size_t>(max_records), out);
    return out;
  }

  // A poll_async() slice (shmbus/_aio.py): poll(), and a durable group's record marked
  // undelivered until its outcome is taken (delivered()).  Thread: a worker, GIL held.
  py::object slice_poll(const py::object& timeout) {
    py::object rec = poll(timeout);
    if (!rec.is_none() && core_ && core_->durable && !core_->undelivered)
      core_->undelivered = rec.attr("seq").cast<uint64_t>();
    return rec;
  }
  void delivered() noexcept {
    if (core_) core_->undelivered.reset();
  }

  // One step of iter_batches(): `out` holds the kept record, if any, or is empty.  Ends
  // empty when idle passed with nothing or the consumer was closed.
  void next_batch(std::optional<std::chrono::nanoseconds> idle, size_t max, py::list& out) {
    if (!core_ || !core_->usable()) return;
    InCall in(core_);
    const auto& core = in.core();
    own(core);
    if (PyList_GET_SIZE(out.ptr()) == 0) {
      bool closed = false;
      py::object rec = read_one(core, idle, &closed, false, core->auto_commit);
      if (rec.is_none()) return;
      out.append(rec);
    } else if (core->durable) {
      // The kept record alone: a commit now would expire it (and commit it) unread.
      return;
    }
    read_more(core, max, out);
  }

  // One step of iteration: None when idle_timeout passed or the consumer was closed.
  py::object next(std::optional<std::chrono::nanoseconds> idle) {
    if (!core_ || !core_->usable()) return py::none();
    InCall in(core_);
    const auto& core = in.core();
    own(core);
    bool closed = false;
    return read_one(core, idle, &closed, false, core->auto_commit);
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
    c.undelivered.reset();  // (the slice's record, if any, is left behind or comes again)
    c.live.expire_all();  // views into the old position die first
    CoreLock lock(c);
    c.deferred.reset();  // an error a batch held back is about the records left behind
    Result<void> r;
    {
      py::gil_scoped_release nogil;
      r = c.consumer->seek(where);  // (also leaves the store, if it was reading there)
    }
    // A group's commit (or close) right after the seek commits its target.
    c.uncommitted = c.durable && r.ok();
    check(r);
    c.snapshot();
  }

  // `commit` false: what auto-commit has not committed yet (the record, or the batch,
  // returned last) is left to the group's next holder; `with` does this when its body
  // raised, so that the record it failed on comes again (at least once, as a Claim's
  // `with` aborts on an exception); it committed it (a review).
  void close(bool commit = true) {
    if (!core_) return;
    std::shared_ptr<ConsumerCore> core = std::move(core_);
    if (core) core->py_owner = nullptr;  // (the core may outlive this object: pinned arrays)
    core->closed = true;
    if (core->generation != fork_generation()) return;
    core->live.expire_all();
    // (An undelivered record without anything uncommitted: another thread's commit()
    // covered it while a slice took it; back to it all the same: a review.)
    if (commit && core->durable && core->auto_commit && (core->uncommitted || core->undelivered)) {
      CoreLock lock(*core);  // waits at most one slice for a reader in another thread
      core->live.expire_all();  // what that reader returned meanwhile (see commit_locked())
      bool commit_ok = true;
      if (core->undelivered && core->consumer) {
        // A slice's record nobody received (see ConsumerCore::undelivered): back to it,
        // then commit (a commit right after a seek commits its target, as _aio's close).
        Result<void> r;
        {
          py::gil_scoped_release nogil;
          r = core->consumer->seek(StartFrom::seq(*core->undelivered));
        }
        commit_ok = r.ok();  // (else nothing is committed: it comes again, with the rest)
        core->uncommitted = commit_ok;  // (a commit right after a seek commits its target)
      }
      if (commit_ok) core->commit_position();
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
  std::string name_state() {
    const std::shared_ptr<ConsumerCore> core = core_;  // (a close() meanwhile lets go of core_)
    if (!core) throw_error(Errc::kClosed, "consumer is closed");
    if (!core->usable()) core->throw_closed();
    CoreLock lock(*core);
    const NameState s = core->replay     ? core->replay->name_state()
                        : core->consumer ? core->consumer->ring().name_state()
                                         : NameState::kSame;
    return name_state_text(s);
  }
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
    // Again: waiting for the lock let go of the GIL, and a read in another thread may
    // have returned a record meanwhile, which this commit covers (its view outlived the
    // commit, and showed another record once producers reused its bytes; a review).
    c.live.expire_all();
    c.commit_position();
  }

  std::shared_ptr<ConsumerCore> core_;  // null once closed
};

// The record a cancelled poll_async() slice took and nobody received yet (shmbus/_aio.py:
// _join waits for the slice in flight, at most one slice): returned before anything newer.
// None, cheaply, when no slice is attached (the class attribute _shmbus_slice is None).
py::object kept_record(py::handle consumer) {
  static PyObject* const kSlot = PyUnicode_InternFromString("_shmbus_slice");  // immortal: never freed
  if (kSlot == nullptr) throw py::error_already_set();
  PyObject* s = PyObject_GetAttr(consumer.ptr(), kSlot);
  if (s == nullptr) {
    PyErr_Clear();  // the bare _shmbus module, without shmbus/_aio.py: no slices
    return py::none();
  }
  const bool none = s == Py_None;
  Py_DECREF(s);
  if (none) return py::none();
  return py::module_::import("shmbus._aio").attr("_join")(consumer);
}

// shmbus.ConsumerIterator (Consumer.iter(), `for rec in consumer`): a plain CPython type,
// so that each step of a `for` loop is one C call (tp_iternext); pybind11's method
// dispatch would cost more than the rest of the step.  Holds the Python Consumer: a
// closed one ends the iteration.
struct IterObject {
  PyObject_HEAD
  PyObject* consumer;      // strong; null once cleared by the GC
  ConsumerHandle* handle;  // consumer's, looked up once (consumer keeps it alive)
  bool has_idle, has_left;
  int64_t idle_ns;         // has_idle
  uint64_t left;           // has_left: records still to return
};

PyTypeObject* g_iter_type = nullptr;

PyObject* iter_next(PyObject* self) {
  auto* it = reinterpret_cast<IterObject*>(self);
  try {
    if (it->consumer == nullptr || (it->has_left && it->left == 0)) return nullptr;
    py::object rec = kept_record(it->consumer);
    if (rec.is_none()) {
      std::optional<std::chrono::nanoseconds> idle;
      if (it->has_idle) idle = std::chrono::nanoseconds(it->idle_ns);
      rec = it->handle->next(idle);
    }
    if (rec.is_none()) return nullptr;  // the end: StopIteration
    if (it->has_left) --it->left;
    return rec.release().ptr();
  } catch (...) {
    set_error_from_current_exception();
  }
  return nullptr;
}

int iter_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(reinterpret_cast<IterObject*>(self)->consumer);
  Py_VISIT(Py_TYPE(self));
  return 0;
}

int iter_clear(PyObject* self) {
  Py_CLEAR(reinterpret_cast<IterObject*>(self)->consumer);
  return 0;
}

void iter_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  iter_clear(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyType_Slot g_iter_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(iter_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(iter_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(iter_clear)},
    {Py_tp_iter, reinterpret_cast<void*>(PyObject_SelfIter)},
    {Py_tp_iternext, reinterpret_cast<void*>(iter_next)},
    {Py_tp_doc, const_cast<char*>("Iterator over a Consumer's records (see Consumer.iter()).")},
    {0, nullptr}};

PyType_Spec g_iter_spec = {"shmbus.ConsumerIterator", sizeof(IterObject), 0,
                           Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                           g_iter_slots};

// A new iterator over `consumer` (a live Consumer).  Thread: GIL held.
py::object new_record_iterator(py::object consumer, std::optional<std::chrono::nanoseconds> idle,
                               std::optional<uint64_t> max_records) {
  ConsumerHandle* handle = &consumer.cast<ConsumerHandle&>();
  PyObject* o = g_iter_type->tp_alloc(g_iter_type, 0);  // zero-filled, tracked by the GC
  if (o == nullptr) throw py::error_already_set();
  auto* it = reinterpret_cast<IterObject*>(o);
  it->handle = handle;
  it->has_idle = idle.has_value();
  it->idle_ns = idle ? idle->count() : 0;
  it->has_left = max_records.has_value();
  it->left = max_records.value_or(0);
  it->consumer = consumer.release().ptr();
  return py::reinterpret_steal<py::object>(o);
}

// Consumer.iter_batches(): lists of records, each taken in one crossing (read_more).
class BatchIterator {
 public:
  BatchIterator(py::object consumer, std::optional<std::chrono::nanoseconds> idle, size_t max_batch,
                std::optional<uint64_t> max_records)
      : consumer_(std::move(consumer)),
        handle_(&consumer_.cast<ConsumerHandle&>()),
        idle_(idle),
        max_batch_(max_batch),
        left_(max_records) {}
  py::list next() {
    if (!handle_ || (left_ && *left_ == 0)) throw py::stop_iteration();  // (!handle_: cleared)
    const size_t max = left_ ? static_cast<size_t>(std::min<uint64_t>(*left_, max_batch_)) : max_batch_;
    py::list out;
    py::object kept = kept_record(consumer_);
    if (!kept.is_none()) out.append(kept);
    handle_->next_batch(idle_, max, out);
    const auto n = static_cast<uint64_t>(PyList_GET_SIZE(out.ptr()));
    if (n == 0) throw py::stop_iteration();
    if (left_) *left_ -= n;
    return out;
  }

  // The collector's view (it was not GC-tracked: `c.batches = c.iter_batches()` was a
  // cycle never collected, its group held until exit: a review).
  int traverse(visitproc visit, void* arg) const {
    Py_VISIT(consumer_.ptr());
    return 0;
  }
  void clear() {
    handle_ = nullptr;
    consumer_ = py::none();
  }

 private:
  py::object consumer_;  // the Python Consumer: a closed one ends the iteration
  ConsumerHandle* handle_;
  std::optional<std::chrono::nanoseconds> idle_;
  size_t max_batch_;
  std::optional<uint64_t> left_;
};

PyTypeObject* g_consumer_type = nullptr;  // shmbus.Consumer (set once, at import)

// pybind11 2.10's traverse of a dynamic_attr class visits the instance's __dict__; for a
// Python subclass with a dict of its own placing (tp_dictoffset differs) CPython's
// subtype_traverse visits it too, before calling this: twice, and the collector then
// took the dict for referenced from outside, so such a subclass's consumer in a cycle (a
// cancelled poll_async slice on it is one) was never collected, its group held until
// exit (a review).  The dict once: here unless subtype_traverse visits it (a subclass with
// __slots__ keeps Consumer's offset: visited here, else not at all: the next review).
int consumer_traverse(PyObject* self, visitproc visit, void* arg) {
  if (Py_TYPE(self)->tp_dictoffset == g_consumer_type->tp_dictoffset) {
    PyObject** dict = _PyObject_GetDictPtr(self);
    if (dict != nullptr) Py_VISIT(*dict);
  }
  Py_VISIT(Py_TYPE(self));  // a heap type's instances own a reference to it
  return 0;
}

// The BatchIterator of a Python instance, or null when its C++ object was never built
// (BatchIterator.__new__(BatchIterator), a subclass's __new__): the collector looks at
// those too (traversing one read a garbage pointer: a review).
BatchIterator* constructed_batch_iterator(PyObject* self) {
  auto* inst = reinterpret_cast<py::detail::instance*>(self);
  const py::detail::value_and_holder vh = inst->get_value_and_holder(nullptr, false);
  if (!vh || !vh.holder_constructed()) return nullptr;
  return vh.template value_ptr<BatchIterator>();
}

std::optional<uint64_t> max_records_arg(const py::object& max_records) {
  if (max_records.is_none()) return std::nullopt;
  if (!is_index(max_records))
    throw py::type_error("max_records must be an int or None");
  return uint64_arg(max_records, "max_records");
}

// poll() as a METH_FASTCALL method (see fastcall.h): pybind11's dispatch was about half
// of a poll(0) that returns a record.  Same arguments, same errors.
PyObject* poll_fast(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) noexcept {
  static const char* const kNames[] = {"timeout"};
  PyObject* a[1];
  if (!parse_fastcall("poll", args, nargs, kwnames, kNames, 1, 0, a)) return nullptr;
  ConsumerHandle* h = self_of<ConsumerHandle>(self);
  if (!h) return nullptr;
  try {
    return h->poll(a[0] ? py::reinterpret_borrow<py::object>(a[0]) : py::none()).release().ptr();
  } catch (...) {
    set_error_from_current_exception();
    return nullptr;
  }
}

PyMethodDef poll_def = {"poll", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(poll_fast)),
                        METH_FASTCALL | METH_KEYWORDS, nullptr};

}  // namespace

void bind_consumer(py::module_& m) {
  g_iter_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&g_iter_spec));
  if (!g_iter_type) throw py::error_already_set();
  // The global keeps PyType_FromSpec's reference (iterators may outlive the module
  // object); the module attribute takes its own.
  m.add_object("ConsumerIterator", py::reinterpret_borrow<py::object>(
                                       reinterpret_cast<PyObject*>(g_iter_type)));
  py::class_<BatchIterator>(
      m, "BatchIterator", "Iterator over a Consumer's records in lists (see Consumer.iter_batches()).",
      // GC-tracked, as the record iterator is: it holds its Consumer.
      py::custom_type_setup([](PyHeapTypeObject* heap_type) {
        PyTypeObject* type = &heap_type->ht_type;
        type->tp_flags |= Py_TPFLAGS_HAVE_GC;
        type->tp_traverse = [](PyObject* self, visitproc visit, void* arg) {
          Py_VISIT(Py_TYPE(self));  // a heap type's instances own a reference to it
          const BatchIterator* it = constructed_batch_iterator(self);
          return it ? it->traverse(visit, arg) : 0;
        };
        type->tp_clear = [](PyObject* self) {
          if (BatchIterator* it = constructed_batch_iterator(self)) it->clear();
          return 0;
        };
        untrack_before_dealloc(heap_type);
      }))
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &BatchIterator::next);

  // dynamic_attr: poll_async()/aiter() (shmbus/_aio.py) keep a slice in flight on it.
  py::class_<ConsumerHandle>(m, "Consumer", py::dynamic_attr(), py::custom_type_setup([](PyHeapTypeObject* heap_type) {
                               untrack_before_dealloc(heap_type);
                               g_consumer_type = &heap_type->ht_type;
                               heap_type->ht_type.tp_traverse = consumer_traverse;
                             }),
                             R"doc(
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
with ``raise_on_gap=True``; either way reading goes on after the gap.  Numbers under
which nothing was published (claims aborted or abandoned: reason "never published
(claims aborted or abandoned)") are counted in ``gaps`` but never raised, as a ring
reader goes past them.  A stream whose
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
An error met by read_batch (a step of iter_batches) after it took some records
(LappedError, EvictedError, GapError, a CorruptError of the store) is raised by the next
read instead, so that those records are returned; a group's loss stays owed to the group
until it is raised (a close before leaves it to the group's next holder).
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
               if (!is_index(max_records))
                 throw py::type_error("max_records must be an int or None");
               max = uint64_arg(max_records, "max_records");
             }
             return new_record_iterator(self, to_timeout(idle_timeout, "idle_timeout"), max);
           },
           py::arg("idle_timeout") = py::none(), py::arg("max_records") = py::none(),
           R"doc(iter(idle_timeout=None, max_records=None) -> Iterator[Record]

Iterates over records.  Stops when no record came for ``idle_timeout`` seconds (None:
never; 0: as soon as the reader has caught up), after ``max_records`` records, or when
the consumer is closed.  ``for rec in consumer`` is ``iter()``: it waits forever (until
close() from another thread, or Ctrl-C).)doc")
      .def("iter_batches",
           [](py::object self, const py::object& max_batch_obj, const py::object& idle_timeout,
              const py::object& max_records) {
             const uint64_t max_batch = count_arg(max_batch_obj, "max_batch");
             self.cast<ConsumerHandle&>().live();
             return BatchIterator(self, to_timeout(idle_timeout, "idle_timeout"),
                                  static_cast<size_t>(max_batch), max_records_arg(max_records));
           },
           py::arg("max_batch") = 1024, py::arg("idle_timeout") = py::none(),
           py::arg("max_records") = py::none(),
           R"doc(iter_batches(max_batch=1024, idle_timeout=None, max_records=None) -> Iterator[list[Record]]

Iterates over records in lists: each step waits for a first record as iter() does, then
takes at once whatever else is there, up to ``max_batch`` records, in one call (the fast
way to read many small records: one crossing into C++ per list, not per record).  The
records of a list stay valid until the next step (with auto_commit, which commits the
whole list then; always: commit() and close()).  Stops as iter() does: no record for
``idle_timeout`` seconds (None: never), ``max_records`` records in all, or close().)doc")
      .def("__iter__",
           [](py::object self) {
             self.cast<ConsumerHandle&>().live();
             return new_record_iterator(self, std::nullopt, std::nullopt);
           })
      .def("seek", &ConsumerHandle::seek, py::arg("start"), R"doc(seek(start) -> None

Moves the consumer to ``start`` (as the constructor's ``start``: "earliest", "latest",
a sequence number, a datetime, "@TIME").  For a durable group this is the explicit way
to rewind or skip it: ``start=`` in the constructor only says where a *new* group
begins; an existing group continues from its committed position.  A commit() or close()
right after it commits the target, as far as records are committed (a claim still
written below it, or a target past the newest record, stops it there).  Records
returned before are expired.)doc")
      .def("commit", &ConsumerHandle::commit, R"doc(commit() -> None

Durable: marks everything returned so far as consumed (the position the group resumes
from, and which producers may overwrite up to).  Expires the records returned so far.
No-op for tailing consumers.)doc")
      .def("_slice_poll", &ConsumerHandle::slice_poll, py::arg("timeout"),
           "poll() for a poll_async() slice (shmbus/_aio.py): a durable group's record stays "
           "uncommitted by close() until _delivered().")
      .def("_delivered", &ConsumerHandle::delivered,
           "The slice's record was taken (delivered, or rewound to by commit/close).")
      .def("close", &ConsumerHandle::close, py::arg("commit") = true,
           "close(commit=True) -> None\n\nCommits (with auto_commit; commit=False leaves what "
           "was returned since the last commit to the group's next holder), expires records, "
           "detaches.  Idempotent; a read waiting in another thread ends with ClosedError.  "
           "Leaving a ``with`` block by an exception closes with commit=False: the record "
           "being processed comes again.")
      .def_property_readonly("closed", &ConsumerHandle::closed)
      .def_property_readonly("name_state", &ConsumerHandle::name_state,
                             "'same'; 'removed' once the stream was removed (``shmbus rm --force``); "
                             "'replaced' once removed and created again: this consumer still reads the "
                             "ring it opened.  Two system calls: ask at "
                             "idle moments, not per record.")
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
      .def_property_readonly("auto_commit", [](const ConsumerHandle& h) { return h.info().auto_commit; },
                             "The constructor's auto_commit.")
      .def_property_readonly("next_seq",
                             [](const ConsumerHandle& h) { return h.info().next_seq.load(); },
                             "Sequence number of the next record to be returned.")
      .def_property_readonly("lost", [](const ConsumerHandle& h) { return h.info().lost.load(); },
                             "Records lost for good to laps (tailing) or eviction (a group on a persisted stream: "
                             "not those it read from the store, nor deleted ones).")
      .def_property_readonly("lost_exact", [](const ConsumerHandle& h) { return h.info().lost_exact.load(); },
                             "Whether lost is exact: false for good once a lap passed sequence numbers "
                             "the ring's gap log no longer names (then lost is an upper bound).")
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
      .def("__exit__", [](ConsumerHandle& h, py::handle type, py::handle, py::handle) {
        // A generator closed by its caller (GeneratorExit) ended normally, as a break does.
        h.close(type.is_none() || PyObject_IsSubclass(type.ptr(), PyExc_GeneratorExit) == 1);
        return false;
      })
      .def("__repr__", &ConsumerHandle::repr);
  install_fastcall(m.attr("Consumer"), poll_def);
}

}  // namespace shmbus::python
