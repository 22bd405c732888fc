// persister.cc: shmbus.Persister: a stream's persister (persist::Persister: ring ->
// segment store) on a thread of this process, started and stopped from Python.
//
// The C++ persister runs on its own thread and never touches Python.  Calls that wait
// on it (start, flush, stop) release the GIL; flush waits in slices so that Ctrl-C
// interrupts it.  The handle keeps the C++ object after stop() so that stats() still
// reports the final counts.  After fork() the child has no persister thread: its
// inherited handles raise ClosedError and are leaked, never stopped.
//
// persist/ logs through its own named logger, to stderr, at the level of $SPDLOG_LEVEL
// (persist/src/log.h): the module leaves the process's spdlog default logger alone.
#include <signal.h>
#include <sys/resource.h>

#include <memory>
#include <mutex>

#include "bindings.h"
#include "errors.h"
#include "shmbus/persister.h"
#include "shmbus/detail/stream_control.h"

namespace shmbus::python {

namespace {

using std::chrono::nanoseconds;

nanoseconds duration_arg(const py::object& seconds, const char* what, bool none_is_zero) {
  if (none_is_zero && seconds.is_none()) return nanoseconds(0);
  auto t = to_timeout(seconds, what, false);
  if (!t) throw_error(Errc::kInvalidArgument, std::string(what) + " must be a finite number of seconds");
  return *t;
}

// A process that does not ignore SIGXFSZ is killed when a segment write meets
// RLIMIT_FSIZE; ignored, the write fails and the persister holds producers and retries.
void warn_if_sigxfsz_kills() {
  struct rlimit lim {};
  if (getrlimit(RLIMIT_FSIZE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return;
  struct sigaction sa {};
  if (sigaction(SIGXFSZ, nullptr, &sa) != 0 || sa.sa_handler != SIG_DFL) return;
  if (PyErr_WarnEx(PyExc_RuntimeWarning,
                   "a file-size limit (RLIMIT_FSIZE) is set and SIGXFSZ is not ignored: a "
                   "segment reaching the limit kills this process; call "
                   "signal.signal(signal.SIGXFSZ, signal.SIG_IGN) first",
                   1) != 0)
    throw py::error_already_set();
}

py::dict store_stats_dict(const persist::StoreStats& s) {
  py::dict d;
  d["kind"] = persist::store_kind_name(s.kind);
  d["granularity"] = s.granularity == persist::PmemGranularity::kNotPmem
                         ? py::object(py::none())
                         : py::object(py::str(persist::granularity_name(s.granularity)));
  d["bytes_on_disk"] = s.bytes_on_disk;
  d["segments"] = s.segments;
  d["oldest_seq"] = s.oldest_seq;
  d["end_seq"] = s.end_seq;
  d["durable_seq"] = s.durable_seq;
  d["deleted_below"] = s.deleted_below;
  d["records_appended"] = s.records_appended;
  d["bytes_appended"] = s.bytes_appended;
  d["lost_marked"] = s.lost_marked;
  d["skipped_marked"] = s.skipped_marked;
  d["flushes"] = s.flushes;
  d["torn_bytes_dropped"] = s.torn_bytes_dropped;
  d["deleted_segments"] = s.deleted_segments;
  d["deleted_records"] = s.deleted_records;
  d["deleted_bytes"] = s.deleted_bytes;
  d["last_delete_ns"] = s.last_delete_ns;
  d["last_error"] = s.last_error.empty() ? py::object(py::none()) : py::object(py::str(s.last_error));
  return d;
}

class PersisterHandle {
 public:
  PersisterHandle(const std::string& stream, const py::object& data_dir, const std::string& store,
                  const std::string& durability, const py::object& flush_interval,
                  const py::object& retention_age, const py::object& retention_bytes,
                  const py::object& segment_bytes, const py::object& roll_age,
                  bool hold_producers, bool secure_delete, const py::object& ns,
                  bool detach_on_stop, const py::object& store_moved) {
    persist::PersisterOptions o;
    ns_ = namespace_of(ns);
    stream_ = stream;
    o.data_dir = unwrap(persist::resolve_data_dir(path_arg(data_dir, "data_dir")));
    if (auto kind = persist::parse_store_kind(store)) o.kind = *kind;
    else throw_error(Errc::kInvalidArgument, "store must be 'file' or 'pmem', not '" + store + "'");
    if (durability == "async") o.durability = persist::Durability::kAsync;
    else if (durability == "sync") o.durability = persist::Durability::kSync;
    else
      throw_error(Errc::kInvalidArgument,
                  "durability must be 'async' or 'sync', not '" + durability + "'");
    o.flush_interval = duration_arg(flush_interval, "flush_interval", false);
    o.retention_age = duration_arg(retention_age, "retention_age", true);
    o.retention_bytes = retention_bytes.is_none() ? 0 : size_arg(retention_bytes, "retention_bytes");
    o.segment_bytes = size_arg(segment_bytes, "segment_bytes");
    o.roll_age = duration_arg(roll_age, "roll_age", true);
    o.hold_producers = hold_producers;
    o.secure_delete = secure_delete;
    o.detach_on_stop = detach_on_stop;
    if (!store_moved.is_none()) {
      const std::string how = py::str(store_moved);
      if (how == "move") o.store_moved = persist::PersisterOptions::StoreMoved::kMove;
      else if (how == "new") o.store_moved = persist::PersisterOptions::StoreMoved::kNew;
      else
        throw_error(Errc::kInvalidArgument,
                    "store_moved must be None, 'move' or 'new', not '" + how + "'");
    }
    warn_if_sigxfsz_kills();
    Result<std::unique_ptr<persist::Persister>> r = make_error(Errc::kIo, "");
    {
      py::gil_scoped_release nogil;  // opens and recovers the store
      r = persist::Persister::start(ns_, stream_, o);
    }
    if (!r)
      throw_error(r.error().code,
                  python_spelling(r.error().message, {{"--move-store (moves", "store_moved='move' (moves"},
                                                      {"--new-store (a new", "store_moved='new' (a new"},
                                                      {"--move-store:", "store_moved='move':"},
                                                      {"use --new-store)", "use store_moved='new')"}}));
    p_ = std::move(r).value();
    // The store folder, as the stream header now says.
    data_dir_ = o.data_dir;
    if (auto ctl = StreamControl::open(ns_, stream_, true); ctl)
      if (auto ps = ctl->persist()) store_dir_ = ps->store_dir;
  }
  PersisterHandle(const PersisterHandle&) = delete;
  PersisterHandle& operator=(const PersisterHandle&) = delete;
  ~PersisterHandle() {
    if (generation_ != fork_generation()) {
      (void)p_.release();  // the parent's persister: its thread does not exist here
      return;
    }
    py::gil_scoped_release nogil;
    (void)p_->stop();  // errors: see stop(); the records not stored stay in the ring
  }

  void flush(const py::object& timeout) {
    check_usable();
    Deadline deadline(to_timeout(timeout, "timeout"));
    for (;;) {
      const auto slice = deadline.next_slice(kPublishSlice);
      Result<void> r;
      {
        py::gil_scoped_release nogil;
        r = p_->flush(slice);
      }
      if (r) return;
      if (r.error().code != Errc::kTimeout) throw_failure(r.error());
      if (deadline.passed())
        throw_error(Errc::kTimeout, "persister of stream '" + stream_ +
                                        "' did not make its records durable in time (is the "
                                        "disk slow or full? see stats()['last_error'])");
      check_signals();
    }
  }

  void stop(const py::object& detach) {
    check_forked();
    Result<void> r;
    const bool explicit_detach = !detach.is_none();
    const bool d = explicit_detach && detach.cast<bool>();
    {
      py::gil_scoped_release nogil;
      r = explicit_detach ? p_->stop(d) : p_->stop();
    }
    if (!r) throw_failure(r.error());
  }

  py::dict stats() const {
    check_forked();
    const persist::PersisterStats s = p_->stats();
    py::dict d;
    d["running"] = p_->running();
    d["records"] = s.records;
    d["bytes"] = s.bytes;
    d["lost"] = s.lost;
    d["durable_seq"] = s.durable_seq;
    d["disk_full_waits"] = s.disk_full_waits;
    d["last_error"] = s.last_error.empty() ? py::object(py::none()) : py::object(py::str(s.last_error));
    d["store"] = store_stats_dict(s.store);
    return d;
  }

  bool running() const noexcept { return generation_ == fork_generation() && p_->running(); }
  const std::string& stream() const noexcept { return stream_; }
  const std::string& ns() const noexcept { return ns_; }
  const std::string& data_dir() const noexcept { return data_dir_; }
  const std::string& store_dir() const noexcept { return store_dir_; }
  std::string repr() const {
    return "<shmbus.Persister stream='" + stream_ + "' namespace='" + ns_ + "' store_dir='" +
           store_dir_ + "'" + (running() ? "" : " stopped") + ">";
  }

  // ClosedError when stopped (or inherited through fork()): `with` on a stopped one.
  void check_open() const { check_usable(); }

 private:
  void check_forked() const {
    if (generation_ != fork_generation())
      throw_error(Errc::kClosed, "persister of stream '" + stream_ +
                                     "' was started before fork(): it runs in the parent only");
  }
  void check_usable() const {
    check_forked();
    if (!p_->running()) {
      const std::string why = p_->stats().last_error;
      throw_error(Errc::kClosed, "persister of stream '" + stream_ + "' is stopped" +
                                     (why.empty() ? std::string() : " (last error: " + why + ")"));
    }
  }
  [[noreturn]] void throw_failure(const Error& e) const {
    throw_error(e.code, "persister of stream '" + stream_ + "': " + e.message);
  }

  std::unique_ptr<persist::Persister> p_;
  const uint64_t generation_ = fork_generation();
  std::string ns_, stream_, data_dir_, store_dir_;
};

}  // namespace

void bind_persister(py::module_& m) {
  m.def("resolve_data_dir",
        [](const py::object& data_dir) { return unwrap(persist::resolve_data_dir(path_arg(data_dir, "data_dir"))); },
        py::arg("data_dir") = py::none(),
        R"doc(resolve_data_dir(data_dir=None) -> str

The store root a Persister uses: ``data_dir`` if given, else $SHMBUS_DATA_DIR, else
~/.local/share/shmbus, else (root without HOME) /var/lib/shmbus; without HOME and not root,
InvalidArgumentError.  A stream's segments go to DATA_DIR/NAMESPACE/STREAM/.)doc");

  py::class_<PersisterHandle>(m, "Persister", R"doc(
Persister(stream, *, data_dir=None, store="file", durability="async", flush_interval=0.01,
          retention_age=None, retention_bytes=None, segment_bytes="64M", roll_age=3600.0,
          hold_producers=True, secure_delete=False, namespace=None, detach_on_stop=False,
          store_moved=None)

Starts persisting a stream (what ``shmbus persist STREAM`` does) on a thread of this
process: it reads the ring as the durable consumer group "_persister" and appends every
record to segment files in DATA_DIR/NAMESPACE/STREAM/.  Its ring position is committed
only once the records are durable, so the ring never lets go of a record that is not
stored.  From then on the stream is *persisted*: Consumers without a group replay from
the store what the ring no longer holds (see Consumer), and ``Producer.publish_durable``
/ ``wait_durable`` can wait for durability.  ``Persister.start(...)`` is the same call.

:param data_dir: the store root (str or path; None: $SHMBUS_DATA_DIR, else
    ~/.local/share/shmbus).
:param store: "file" (write() + batched fdatasync) or "pmem" (PMDK libpmem2).
:param durability: "async" (durable within ``flush_interval`` seconds) or "sync" (flush
    as soon as the ring is drained: durability waits end sooner).
:param retention_age: seconds; delete segments older than this (None or 0: keep forever).
:param retention_bytes: int or "10G": keep at most this much (None or 0: no limit).
:param segment_bytes: int or "64M": roll segments at this size.
:param roll_age: seconds: roll segments at this age (0: never).
:param hold_producers: True: if the persister dies, producers wait for it (nothing is
    lost); False: they go on and the store records the lost range.
:param secure_delete: overwrite segments with zeros before retention unlinks them (recorded
    with the store: a later persister keeps it even when started without it).
:param detach_on_stop: what a clean stop (stop(), the end of a ``with`` block) does:
    False keeps the stream persisted, so producers wait for a persister once the ring
    is full (nothing goes unstored); True ends persistence (see stop(detach=True)).
:param store_moved: the stream's header records where its store is; a persister on
    another data_dir is refused (InvalidArgumentError) unless this says what to do:
    "move" moves the store here (``shmbus persist --move-store``), "new" starts a new
    store here and leaves the old one where it is (``--new-store``).

One persister per stream at a time (BusyError for a second, in any process).  Errors:
NotFoundError (no such stream), BusyError, IncompatibleError (the store holds an earlier
stream of that name), PermissionDeniedError, NoSpaceError, IoError.

Use it as a context manager, or call stop(); dropping it also stops it.  SIGXFSZ must
stay ignored in the process (as the CLI does; CPython ignores it at startup, but an
application embedding Python, or code that restored SIG_DFL, may not): otherwise a
segment that meets a file-size limit (RLIMIT_FSIZE) kills the process instead of failing
the write, which the persister retries while holding producers back.  Starting with a
limit set and SIGXFSZ not ignored warns (RuntimeWarning).  The persister logs to
stderr (info: start and stop; warnings: lost ranges, write errors); SPDLOG_LEVEL=warn
(or off) in the environment at import quiets it.
)doc")
      .def(py::init<const std::string&, const py::object&, const std::string&, const std::string&,
                    const py::object&, const py::object&, const py::object&, const py::object&,
                    const py::object&, bool, bool, const py::object&, bool, const py::object&>(),
           py::arg("stream"), py::kw_only(), py::arg("data_dir") = py::none(),
           py::arg("store") = "file", py::arg("durability") = "async",
           py::arg("flush_interval") = 0.01, py::arg("retention_age") = py::none(),
           py::arg("retention_bytes") = py::none(), py::arg("segment_bytes") = "64M",
           py::arg("roll_age") = 3600.0, py::arg("hold_producers") = true,
           py::arg("secure_delete") = false, py::arg("namespace") = py::none(),
           py::arg("detach_on_stop") = false, py::arg("store_moved") = py::none())
      .def("flush", &PersisterHandle::flush, py::arg("timeout") = 30.0,
           R"doc(flush(timeout=30.0) -> None

Returns once every record the persister has read from the ring so far is durable.
TimeoutError after ``timeout`` seconds (None: no limit); NoSpaceError / IoError when the
store cannot be written (the records stay in the ring); ClosedError once stopped.  Waits
without the GIL; Ctrl-C interrupts it.)doc")
      .def("stop", &PersisterHandle::stop, py::arg("detach") = py::none(), R"doc(stop(detach=None) -> None

Makes everything read durable, stops the thread and releases the store.  Idempotent.
``detach=True`` also ends persistence of the stream: the "_persister" group goes, so
producers are free at once, and consumers no longer replay from the store (which stays
on disk; ``shmbus persist STREAM --detach`` does the same later).  ``detach=False``
keeps the stream persisted: producers wait for a persister once the ring is full.
None: as ``detach_on_stop`` says.
Raises (after stopping) when the last records could not be written: they stay in the
ring for the next persister.  Waits without the GIL.)doc")
      .def("stats", &PersisterHandle::stats, R"doc(stats() -> dict

Counters since start: running, records, bytes (payload), lost (sequences recorded as
lost: records that left the ring while no persister ran; the numbers of aborted or
abandoned claims are recorded as skipped: store.skipped_marked),
durable_seq (records below are durable), disk_full_waits, last_error (None or the last
write failure), and store: {kind, granularity (pmem: "byte", "cache-line", "page"; file:
None), bytes_on_disk, segments, oldest_seq, end_seq, durable_seq, deleted_below,
records_appended, bytes_appended, lost_marked, skipped_marked, flushes, torn_bytes_dropped,
deleted_segments, deleted_records, deleted_bytes, last_delete_ns, last_error}.
Still works after stop() (the final counts).)doc")
      .def_property_readonly("running", &PersisterHandle::running,
                             "True until stop() (or until the persister thread ended).")
      .def_property_readonly("stream", &PersisterHandle::stream, "The stream's name.")
      .def_property_readonly("namespace", &PersisterHandle::ns, "The resolved namespace.")
      .def_property_readonly("data_dir", &PersisterHandle::data_dir, "The resolved store root.")
      .def_property_readonly("store_dir", &PersisterHandle::store_dir,
                             "DATA_DIR/NAMESPACE/STREAM: where the segments are.")
      // A stopped one is ClosedError, as Producer's and Consumer's (a review: it entered).
      .def("__enter__", [](py::object self) {
        self.cast<PersisterHandle&>().check_open();
        return self;
      })
      .def("__exit__", [](PersisterHandle& h, py::handle, py::handle, py::handle) {
        h.stop(py::none());
        return false;
      })
      .def("__repr__", &PersisterHandle::repr);
  // Persister.start(...) = Persister(...), after the C++ Persister::start.
  py::object cls = m.attr("Persister");
  cls.attr("start") = py::reinterpret_steal<py::object>(
      PyStaticMethod_New(py::cpp_function([cls](py::args args, py::kwargs kwargs) {
                           return cls(*args, **kwargs);
                         }, py::name("start"), py::doc("start(stream, **options) -> Persister\n\n"
                                                         "The same as Persister(stream, **options).")).ptr()));
}

}  // namespace shmbus::python
