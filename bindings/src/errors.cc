// errors.cc: see errors.h.
#include "errors.h"

namespace shmbus::python {

namespace {

enum Cls {
  kInvalidArgument, kTooLarge, kNotFound, kExists, kPermission, kNoSpace, kIo, kTimeout,
  kIncompatible, kCorrupt, kBusy, kFull, kAbandoned, kLapped, kGap, kClosed, kNotPersisted, kEvicted,
  kBase, kCount
};
constexpr const char* kNames[kCount] = {
    "InvalidArgumentError", "RecordTooLargeError", "NotFoundError", "ExistsError",
    "PermissionDeniedError", "NoSpaceError", "IoError", "TimeoutError", "IncompatibleError",
    "CorruptError", "BusyError", "FullError", "AbandonedError", "LappedError", "GapError",
    "ClosedError", "NotPersistedError", "EvictedError", "Error"};

// Strong references, never released: exceptions must outlive every handle, including
// the ones torn down while the interpreter finalizes.
PyObject* g_classes[kCount] = {};

Cls class_of(Errc c) {
  switch (c) {
    case Errc::kInvalidArgument: return kInvalidArgument;
    case Errc::kNotFound: return kNotFound;
    case Errc::kExists: return kExists;
    case Errc::kIncompatible: return kIncompatible;
    case Errc::kCorrupt:
    case Errc::kTruncated: return kCorrupt;
    case Errc::kNoSpace: return kNoSpace;
    case Errc::kPermission: return kPermission;
    case Errc::kBusy: return kBusy;
    case Errc::kTimeout: return kTimeout;
    case Errc::kTooLarge: return kTooLarge;
    case Errc::kFull: return kFull;
    case Errc::kClosed: return kClosed;
    case Errc::kIo: return kIo;
  }
  return kBase;
}

// Raises g_classes[cls](*args) with `code` and the extra attributes set on the instance.
[[noreturn]] void raise(Cls cls, const py::tuple& args, const char* code,
                        std::initializer_list<std::pair<const char*, py::object>> attrs = {}) {
  PyObject* type = g_classes[cls];
  py::object exc = py::reinterpret_steal<py::object>(PyObject_CallObject(type, args.ptr()));
  if (!exc) throw py::error_already_set();
  if (PyObject_SetAttrString(exc.ptr(), "code", py::str(code).ptr()) != 0)
    throw py::error_already_set();
  for (const auto& [name, value] : attrs)
    if (PyObject_SetAttrString(exc.ptr(), name, value.ptr()) != 0) throw py::error_already_set();
  PyErr_SetObject(type, exc.ptr());
  throw py::error_already_set();
}

}  // namespace

void load_error_classes() {
  py::module_ errors = py::module_::import("shmbus.errors");
  for (int i = 0; i < kCount; ++i) g_classes[i] = py::object(errors.attr(kNames[i])).release().ptr();
}

void throw_error(Errc code, const std::string& message) {
  raise(class_of(code), py::make_tuple(message), errc_name(code));
}

void throw_abandoned(const std::string& message) {
  raise(kAbandoned, py::make_tuple(message), "abandoned");
}

void throw_not_persisted(const std::string& message, uint64_t seq) {
  raise(kNotPersisted, py::make_tuple(message), "not_persisted", {{"seq", py::int_(seq)}});
}

void throw_lapped(const std::string& message, uint64_t lost) {
  raise(kLapped, py::make_tuple(message), "lapped", {{"lost", py::int_(lost)}});
}

void throw_evicted(const std::string& message, uint64_t from_seq, uint64_t to_seq, uint64_t lost) {
  raise(kEvicted, py::make_tuple(message), "evicted",
        {{"lost", py::int_(lost)}, {"from_seq", py::int_(from_seq)}, {"to_seq", py::int_(to_seq)}});
}

void throw_durable_timeout(const std::string& message, uint64_t seq) {
  raise(kTimeout, py::make_tuple(message), errc_name(Errc::kTimeout), {{"seq", py::int_(seq)}});
}

void throw_gap(uint64_t from_seq, uint64_t to_seq, const std::string& reason) {
  raise(kGap, py::make_tuple(from_seq, to_seq, reason), "gap");
}

}  // namespace shmbus::python
