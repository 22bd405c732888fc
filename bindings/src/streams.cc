// streams.cc: create, remove, list and describe streams; namespaces.
#include <pybind11/stl.h>

#include "bindings.h"
#include "errors.h"

namespace shmbus::python {

namespace {

uint64_t to_size(const py::object& v, const char* what) {
  if (py::isinstance<py::str>(v)) return unwrap(parse_size(v.cast<std::string>()));
  if (PyLong_Check(v.ptr()) && !PyBool_Check(v.ptr())) {
    if (py::int_(0) > py::int_(v)) throw_error(Errc::kInvalidArgument, std::string(what) + " must be >= 0");
    return v.cast<uint64_t>();
  }
  throw py::type_error(std::string(what) + " must be an int (bytes) or a str like '64M', not " +
                       std::string(py::str(py::type::of(v).attr("__name__"))));
}

std::chrono::milliseconds to_ms(const py::object& seconds, const char* what) {
  auto t = to_timeout(seconds, what);
  if (!t) throw_error(Errc::kInvalidArgument, std::string(what) + " must be a number of seconds");
  return std::chrono::duration_cast<std::chrono::milliseconds>(*t);
}

void create(const std::string& name, const py::object& capacity, bool exist_ok,
            const py::object& max_record, uint32_t mode, const py::object& ns,
            const py::object& abandon_timeout, const py::object& consumer_dead_timeout) {
  StreamOptions o;
  o.capacity = to_size(capacity, "capacity");
  o.max_record = max_record.is_none() ? 0 : to_size(max_record, "max_record");
  o.mode = mode;
  o.exist_ok = exist_ok;
  o.abandon_timeout = to_ms(abandon_timeout, "abandon_timeout");
  o.consumer_dead_timeout = to_ms(consumer_dead_timeout, "consumer_dead_timeout");
  const std::string nspace = namespace_of(ns);
  Result<void> r;
  {
    py::gil_scoped_release nogil;  // reserves every page of the ring
    r = create_stream(nspace, name, o);
  }
  check(r);
}

void remove(const std::string& name, bool force, const py::object& ns) {
  const std::string nspace = namespace_of(ns);
  Result<void> r;
  {
    py::gil_scoped_release nogil;
    r = remove_stream(nspace, name, force);
  }
  check(r);
}

std::vector<std::string> ls(const py::object& ns) { return unwrap(list_streams(namespace_of(ns))); }

py::dict stat(const std::string& name, const py::object& ns) {
  const std::string nspace = namespace_of(ns);
  Result<StreamInfo> r = make_error(Errc::kIo, "");
  {
    py::gil_scoped_release nogil;  // open waits briefly for a creator still at work
    r = stream_info(nspace, name);
  }
  StreamInfo s = unwrap(std::move(r));
  py::dict d;
  d["stream"] = s.name;
  d["namespace"] = s.ns;
  d["layout_version"] = s.layout_version;
  d["capacity"] = s.capacity;
  d["max_record"] = s.max_record;
  d["created_ns"] = s.created_ns;
  d["next_seq"] = s.next_seq;
  d["oldest_seq"] = s.oldest_seq;
  d["tail_pos"] = s.tail_pos;
  d["records_published"] = s.records_published;
  d["bytes_published"] = s.bytes_published;
  d["abandoned"] = s.abandoned;
  d["aborted"] = s.aborted;
  d["producer_waits"] = s.producer_waits;
  d["producer_full"] = s.producer_full;
  d["tail_lost"] = s.tail_lost;
  d["evictions"] = s.evictions;
  d["abandon_timeout_ms"] = s.abandon_timeout_ms;
  d["consumer_dead_timeout_ms"] = s.consumer_dead_timeout_ms;
  if (s.persist) {
    const PersistSettings& p = *s.persist;
    py::dict e;
    e["store_dir"] = p.store_dir;
    e["store_kind"] = p.store_kind;
    e["hold_producers"] = p.hold_producers;
    e["sync"] = p.sync;
    e["flush_interval_ns"] = static_cast<uint64_t>(p.flush_interval.count());
    e["retention_age_ns"] = static_cast<uint64_t>(p.retention_age.count());
    e["retention_bytes"] = p.retention_bytes;
    e["segment_bytes"] = p.segment_bytes;
    d["persist"] = e;
  } else {
    d["persist"] = py::none();
  }
  d["durable_seq"] = s.durable_seq;
  d["oldest_persisted_seq"] = s.oldest_persisted_seq;
  d["deleted_below"] = s.deleted_below;
  d["persister_beat_ns"] = s.persister_beat_ns;
  d["store"] = s.persist ? s.persist->store_kind : std::string();
  d["pmem_granularity"] = s.pmem_granularity;
  d["disk_bytes"] = s.disk_bytes;
  d["segments"] = s.segments;
  d["deleted_records"] = s.deleted_records;
  d["deleted_bytes"] = s.deleted_bytes;
  // The rates and the capacity plan are added by shmbus.stat() (shmbus/_stat.py).
  py::list producers;
  for (const ProducerInfo& p : s.producers) {
    py::dict e;
    e["pid"] = p.pid;
    e["alive"] = p.alive;
    e["start_ns"] = p.start_ns;
    e["last_active_ns"] = p.last_active_ns;
    e["records"] = p.records;
    e["bytes"] = p.bytes;
    producers.append(e);
  }
  d["producers"] = producers;
  py::list consumers;
  for (const ConsumerInfo& c : s.consumers) {
    py::dict e;
    e["name"] = c.name;
    e["pid"] = c.pid;
    e["alive"] = c.alive;
    e["durable"] = c.durable;
    e["evicted"] = c.evicted;
    e["next_seq"] = c.next_seq;
    e["lag"] = c.lag;
    e["last_active_ns"] = c.last_active_ns;
    consumers.append(e);
  }
  d["consumers"] = consumers;
  return d;
}

}  // namespace

void bind_streams(py::module_& m) {
  m.def("create", &create, py::arg("name"), py::arg("capacity") = "1M", py::kw_only(),
        py::arg("exist_ok") = false, py::arg("max_record") = py::none(),
        py::arg("mode") = 0600, py::arg("namespace") = py::none(),
        py::arg("abandon_timeout") = 1.0, py::arg("consumer_dead_timeout") = 2.0,
        R"doc(create(name, capacity="1M", *, exist_ok=False, max_record=None, mode=0o600,
       namespace=None, abandon_timeout=1.0, consumer_dead_timeout=2.0) -> None

Creates a stream: a ring of ``capacity`` bytes (an int, or "64K", "16M", "1G"; a power
of two from 4K) in /dev/shm.  ``max_record`` (int or str) is the largest payload (None:
capacity/8).  ``mode`` is the permission bits of the shared-memory object.
``exist_ok=True`` accepts an existing stream of the same capacity.  A claim left
uncommitted ``abandon_timeout`` seconds becomes a gap; a durable consumer whose process
died stops holding producers back after ``consumer_dead_timeout`` seconds.
ExistsError, InvalidArgumentError, NoSpaceError.)doc");
  m.def("remove", &remove, py::arg("name"), py::kw_only(), py::arg("force") = false,
        py::arg("namespace") = py::none(),
        R"doc(remove(name, *, force=False, namespace=None) -> None

Removes a stream.  BusyError while a live process produces to or consumes from it,
unless ``force``.  Processes that have it open keep their mapping until they close.
NotFoundError if it does not exist.)doc");
  m.def("ls", &ls, py::arg("namespace") = py::none(),
        "ls(namespace=None) -> list[str]\n\nThe streams of a namespace, sorted.");
  m.def("_stat", &stat, py::arg("name"), py::arg("namespace") = py::none(),
        "One snapshot of a stream's StreamInfo, without rates (see shmbus.stat).");
  m.def("resolve_namespace",
        [](const py::object& ns) { return namespace_of(ns); }, py::arg("namespace") = py::none(),
        R"doc(resolve_namespace(namespace=None) -> str

The namespace a call uses: ``namespace`` if given (and not empty), else
$SHMBUS_NAMESPACE, else "default".)doc");
  m.def("parse_size", [](const std::string& s) { return unwrap(parse_size(s)); }, py::arg("text"),
        "parse_size(text) -> int\n\n\"4096\", \"64K\", \"16M\", \"1G\" (powers of 1024) -> bytes.");
}

}  // namespace shmbus::python
