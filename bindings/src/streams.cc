// streams.cc: create, remove, list and describe streams; namespaces.
// stat: tools/stat computes and renders the document (shmbus/stat.h: compute_stat,
// stat_json), the same function as `shmbus stat --json`.
#include <pybind11/stl.h>

#include <algorithm>
#include <thread>

#include "shmbus/stat.h"
#include "shmbus/store_admin.h"

#include "bindings.h"
#include "errors.h"

namespace shmbus::python {

namespace {

std::chrono::milliseconds to_ms(const py::object& seconds, const char* what) {
  auto t = to_timeout(seconds, what, false);
  if (!t) throw_error(Errc::kInvalidArgument, std::string(what) + " must be a number of seconds");
  return std::chrono::duration_cast<std::chrono::milliseconds>(*t);
}

void create(const std::string& name, const py::object& capacity, bool exist_ok,
            const py::object& max_record, uint32_t mode, const py::object& ns,
            const py::object& abandon_timeout, const py::object& consumer_dead_timeout,
            const py::object& trust_owner, const py::object& data_dir, bool fresh,
            const py::object& consumer_retention, bool single_producer) {
  StreamOptions o;
  o.single_producer = single_producer;
  o.capacity = size_arg(capacity, "capacity");
  o.max_record = max_record.is_none() ? 0 : size_arg(max_record, "max_record");
  o.mode = mode;
  o.exist_ok = exist_ok;
  if (!trust_owner.is_none()) {
    const auto uid = trust_owner.cast<int64_t>();
    if (uid < 0 || uid > 0xffffffffLL) throw_error(Errc::kInvalidArgument, "trust_owner must be a uid");
    o.trusted_owner = uid;
  }
  o.abandon_timeout = to_ms(abandon_timeout, "abandon_timeout");
  o.consumer_dead_timeout = to_ms(consumer_dead_timeout, "consumer_dead_timeout");
  if (!consumer_retention.is_none())  // None: the library's default (7 days)
    o.consumer_retention = to_ms(consumer_retention, "consumer_retention");
  const std::string nspace = namespace_of(ns);
  persist::AdminOptions admin;
  admin.data_dir = path_arg(data_dir, "data_dir");
  Result<persist::CreateOutcome> r = make_error(Errc::kIo, "");
  {
    py::gil_scoped_release nogil;  // reserves every page of the ring; may open a store
    r = persist::create_stream_over_store(nspace, name, o, fresh, admin);
  }
  // (Its hints in Python's spelling, as remove()'s.)
  if (!r)
    throw_error(r.error().code,
                python_spelling(r.error().message, {{"use --exist-ok to", "pass exist_ok=True to"},
                                                    {"exist_ok (--exist-ok)", "exist_ok=True"},
                                                    {"shmbus rm --force", "shmbus.remove(name, force=True)"},
                                                    {"--fresh", "fresh=True"}}));
}

void remove(const std::string& name, bool force, const py::object& ns) {
  const std::string nspace = namespace_of(ns);
  Result<void> r;
  {
    py::gil_scoped_release nogil;
    // As `shmbus rm --force`: the records a persister had not stored are recorded as lost
    // in the store first, so that a ring created over it does not number new records as
    // them (best effort: the removal is what was asked for).
    if (force) (void)persist::record_unstored_as_lost(nspace, name);
    r = remove_stream(nspace, name, force);
  }
  if (!r) throw_error(r.error().code, python_spelling(r.error().message, {{"use --force to", "use force=True to"}}));
}

// The ring streams of the namespace; with `stored`, also those that exist only as their
// store in the data dir (as `shmbus ls` lists them), sorted together.
std::vector<std::string> ls(const py::object& ns, bool stored, const py::object& data_dir) {
  const std::string nspace = namespace_of(ns);
  std::vector<std::string> out = unwrap(list_streams(nspace));
  if (stored) {
    auto more = persist::stored_streams(nspace, path_arg(data_dir, "data_dir"));
    if (!more && more.error().code != Errc::kNotFound) throw_error(more.error());
    if (more) out.insert(out.end(), more->begin(), more->end());
    std::sort(out.begin(), out.end());
  }
  return out;
}

StreamInfo snapshot(const std::string& ns, const std::string& name) {
  Result<StreamInfo> r = make_error(Errc::kIo, "");
  {
    py::gil_scoped_release nogil;  // open waits briefly for a creator still at work
    r = stream_info(ns, name);
  }
  return unwrap(std::move(r));
}

// The JSON of `shmbus stat --json` (shmbus/stat.h; without the CLI's "bridges"): one
// snapshot, or two `interval` seconds apart and the rates between them.  The wait runs without the GIL, in slices
// with signal checks between them (Ctrl-C raises KeyboardInterrupt).
std::string stat_json(const std::string& name, const py::object& ns, const py::object& interval,
                      double stall_s, const py::object& data_dir) {
  const std::string nspace = namespace_of(ns);
  const auto wait = to_timeout(interval, "interval", false);
  if (!wait) throw_error(Errc::kInvalidArgument, "interval must be a number of seconds");
  Result<StreamInfo> ring = make_error(Errc::kIo, "");
  {
    py::gil_scoped_release nogil;  // open waits briefly for a creator still at work
    ring = stream_info(nspace, name);
  }
  if (!ring && ring.error().code == Errc::kNotFound) {
    const std::string dir = path_arg(data_dir, "data_dir");
    // A stream that exists only as its store (ls(stored=True)): the store's part, as
    // `shmbus stat --json` gives it, with "ring": false (no rates: nothing is published).
    Result<StreamStat> stored = make_error(Errc::kIo, "");
    {
      py::gil_scoped_release nogil;
      stored = stored_stream_stat(nspace, name, dir);
    }
    if (stored)
      return shmbus::stat_json(stored.value(), [&](JsonWriter& w) { write_stored_keys(stored.value(), w); });
    if (stored.error().code != Errc::kNotFound) throw_error(stored.error());  // e.g. not readable
  }
  StreamInfo first = unwrap(std::move(ring));
  if (wait->count() == 0) return shmbus::stat_json(compute_stat(std::move(first), nullptr, 0, stall_s));
  const auto t0 = std::chrono::steady_clock::now();
  Deadline deadline(*wait);
  while (!deadline.passed()) {
    const auto slice = deadline.next_slice();
    {
      py::gil_scoped_release nogil;
      std::this_thread::sleep_for(slice);
    }
    check_signals();
  }
  StreamInfo second = snapshot(nspace, name);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return shmbus::stat_json(compute_stat(std::move(second), &first, seconds, stall_s));
}

}  // namespace

void bind_streams(py::module_& m) {
  m.def("create", &create, py::arg("name"), py::arg("capacity") = "1M", py::kw_only(),
        py::arg("exist_ok") = false, py::arg("max_record") = py::none(),
        py::arg("mode") = 0600, py::arg("namespace") = py::none(),
        py::arg("abandon_timeout") = 1.0, py::arg("consumer_dead_timeout") = 2.0,
        py::arg("trust_owner") = py::none(), py::arg("data_dir") = py::none(),
        py::arg("fresh") = false, py::arg("consumer_retention") = py::none(),
        py::arg("single_producer") = false,
        R"doc(create(name, capacity="1M", *, exist_ok=False, max_record=None, mode=0o600,
       namespace=None, abandon_timeout=1.0, consumer_dead_timeout=2.0, trust_owner=None,
       data_dir=None, fresh=False, consumer_retention=None, single_producer=False) -> None

Creates a stream: a ring of ``capacity`` bytes (an int, or "64K", "16M", "1G"; a power
of two from 4K) in /dev/shm.  ``max_record`` (int or str) is the largest payload (None:
capacity/8).  ``mode`` is the permission bits of the shared-memory object.
``exist_ok=True`` accepts an existing stream of the same capacity that belongs to you (or
to the uid ``trust_owner``; another owner raises PermissionError).  A claim left
uncommitted ``abandon_timeout`` seconds becomes a gap; a durable consumer whose process
died stops holding producers back after ``consumer_dead_timeout`` seconds (it is
evicted: what producers then overwrite is lost to it, and its next read raises
EvictedError saying how many); its position is kept ``consumer_retention`` seconds after
its reader went away (None: 7 days, as Kafka's offsets retention; 0: for ever), then the
group is forgotten and starts anew where ``start`` says.  When the
data dir (``data_dir``, as for Persister) holds a store of the stream, the new ring
continues its numbering (sequence numbers are never reused) and readers find the stored
records at once; ``fresh=True`` removes that store first and starts over at 0.
``single_producer=True`` allows one Producer at a time (another raises BusyError while
the first lives), which publishes without locked instructions (1.1-3x the rate of
small records).
ExistsError, InvalidArgumentError, NoSpaceError.)doc");
  m.def("remove", &remove, py::arg("name"), py::kw_only(), py::arg("force") = false,
        py::arg("namespace") = py::none(),
        R"doc(remove(name, *, force=False, namespace=None) -> None

Removes a stream.  BusyError while a live process produces to or consumes from it,
unless ``force``.  Processes that have it open keep their mapping until they close.
NotFoundError if it does not exist.)doc");
  m.def("ls", &ls, py::arg("namespace") = py::none(), py::kw_only(), py::arg("stored") = false,
        py::arg("data_dir") = py::none(),
        R"doc(ls(namespace=None, *, stored=False, data_dir=None) -> list[str]

The streams of a namespace (their rings), sorted.  ``stored=True`` also lists the
streams that exist only as their store in the data dir (``data_dir``, as for Persister:
None is $SHMBUS_DATA_DIR, else ~/.local/share/shmbus), after a reboot or a ring removed
with force, as ``shmbus ls`` shows them ("stored (no ring)"); stat() with the same
``data_dir`` describes them (``st["ring"]`` is False), a Consumer without a group reads them, create() continues
them.)doc");
  m.def(
      "_timeout",
      [](py::handle seconds, const std::string& what, bool none_waits) -> std::optional<double> {
        auto t = to_timeout(seconds, what.c_str(), none_waits);
        if (!t) return std::nullopt;
        return std::chrono::duration<double>(*t).count();
      },
      py::arg("seconds"), py::arg("what"), py::arg("none_waits") = true,
      "A timeout as every call checks it: seconds (float), or None for forever.  none_waits "
      "False: a duration whose None means something else (stat's interval): its errors do not "
      "offer None as 'wait forever'.");
  m.def(
      "_count", [](py::handle v, const std::string& what) { return count_arg(v, what.c_str()); },
      py::arg("value"), py::arg("what"), "A count argument as read_batch() checks it (an int >= 1, any size).");
  m.def("_stat_json", &stat_json, py::arg("name"), py::arg("namespace"), py::arg("interval"),
        py::arg("stall"), py::arg("data_dir") = py::none(),
        "The JSON text of `shmbus stat --json` (see shmbus.stat, which parses it).");
  m.def("resolve_namespace",
        [](const py::object& ns) {
          // Checked as every call that takes it checks it ('a/b' came back as it was).
          std::string r = namespace_of(ns);
          check(validate_name("namespace", r));
          return r;
        },
        py::arg("namespace") = py::none(),
        R"doc(resolve_namespace(namespace=None) -> str

The namespace a call uses: ``namespace`` if given (and not empty), else
$SHMBUS_NAMESPACE, else "default".)doc");
  m.def("parse_size", [](const std::string& s) { return unwrap(parse_size(s)); }, py::arg("text"),
        "parse_size(text) -> int\n\n\"4096\", \"64K\", \"16M\", \"1G\", \"64KiB\" (powers of 1024) or "
        "\"10KB\", \"10MB\", \"1GB\" (powers of 1000) -> bytes.");
}

}  // namespace shmbus::python
