// errors.cc: see errors.h.
#include "errors.h"

#include <cctype>

namespace shmbus::python {

namespace {

enum Cls {
  kInvalidArgument, kTooLarge, kNotFound, kExists, kPermission, kNoSpace, kIo, kTimeout,
  kIncompatible, kCorrupt, kBusy, kFull, kAbandoned, kLapped, kGap, kClosed, kNotPersisted, kEvicted,
  kBase, kCount
};

// The C++ side's one list of the Python error classes (shmbus/errors.py defines them;
// shmbus/__init__.py and __init__.pyi re-export them): bindings/tests/test_stubs.py
// checks every place against it through _shmbus._error_classes().
struct ErrorClass {
  const char* name;
  const char* code;   // the class's `code` (an instance raised for an Errc gets errc_name)
  const char* args;   // the constructor's arguments, as raise() passes them
  const char* attrs;  // set on the instance by raise(), besides `code`
};
constexpr ErrorClass kClasses[kCount] = {
    {"InvalidArgumentError", "invalid argument", "message", ""},
    {"RecordTooLargeError", "too large", "message", ""},
    {"NotFoundError", "not found", "message", ""},
    {"ExistsError", "exists", "message", ""},
    {"PermissionDeniedError", "permission denied", "message", ""},
    {"NoSpaceError", "no space", "message", ""},
    {"IoError", "I/O error", "message", ""},
    {"TimeoutError", "timeout", "message", "seq"},
    {"IncompatibleError", "incompatible format", "message", ""},
    {"CorruptError", "corrupt", "message", ""},
    {"BusyError", "busy", "message", ""},
    {"FullError", "full", "message", ""},
    {"AbandonedError", "abandoned", "message", ""},
    {"LappedError", "lapped", "message", "lost"},
    {"GapError", "gap", "from_seq to_seq reason", ""},
    {"ClosedError", "closed", "message", ""},
    {"NotPersistedError", "not_persisted", "message", "seq"},
    {"EvictedError", "evicted", "message", "lost from_seq to_seq"},
    {"Error", "error", "message", ""}};

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
  for (int i = 0; i < kCount; ++i)
    g_classes[i] = py::object(errors.attr(kClasses[i].name)).release().ptr();
}

void bind_errors(py::module_& m) {
  m.def("_error_classes", [] {
    // Per class: (name, code, constructor arguments, attributes set, the Errc names
    // raised as it).
    py::list out;
    auto words = [](const char* s) {
      py::list l;
      for (py::handle w : py::str(s).attr("split")()) l.append(w);
      return py::tuple(l);
    };
    for (int i = 0; i < kCount; ++i) {
      py::list errcs;
      for (int e = 0; e <= static_cast<int>(Errc::kIo); ++e)  // kIo: the last Errc (result.h)
        if (class_of(static_cast<Errc>(e)) == i) errcs.append(errc_name(static_cast<Errc>(e)));
      out.append(py::make_tuple(kClasses[i].name, kClasses[i].code, words(kClasses[i].args),
                                words(kClasses[i].attrs), py::tuple(errcs)));
    }
    return out;
  }, "The error classes as the C++ side raises them (for the tests).");
}

void throw_error(Errc code, const std::string& message) {
  raise(class_of(code), py::make_tuple(message), errc_name(code));
}

void throw_abandoned(const std::string& message) {
  raise(kAbandoned, py::make_tuple(message), kClasses[kAbandoned].code);
}

void throw_not_persisted(const std::string& message, uint64_t seq) {
  raise(kNotPersisted, py::make_tuple(message), kClasses[kNotPersisted].code, {{"seq", py::int_(seq)}});
}

void throw_lapped(const std::string& message, uint64_t lost) {
  raise(kLapped, py::make_tuple(message), kClasses[kLapped].code, {{"lost", py::int_(lost)}});
}

void throw_evicted(const std::string& message, uint64_t from_seq, uint64_t to_seq, uint64_t lost) {
  raise(kEvicted, py::make_tuple(message), kClasses[kEvicted].code,
        {{"lost", py::int_(lost)}, {"from_seq", py::int_(from_seq)}, {"to_seq", py::int_(to_seq)}});
}

void throw_durable_timeout(const std::string& message, uint64_t seq) {
  raise(kTimeout, py::make_tuple(message), errc_name(Errc::kTimeout), {{"seq", py::int_(seq)}});
}

void throw_gap(uint64_t from_seq, uint64_t to_seq, const std::string& reason) {
  raise(kGap, py::make_tuple(from_seq, to_seq, reason), kClasses[kGap].code);
}

std::string python_spelling(std::string message,
                            std::initializer_list<std::pair<std::string_view, std::string_view>> flags) {
  for (const auto& [flag, keyword] : flags) {
    for (size_t at = message.find(flag); at != std::string::npos;) {
      const size_t end = at + flag.size();
      auto word = [&](size_t i) {
        const auto ch = static_cast<unsigned char>(message[i]);
        return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '/' || ch == '.';
      };
      const bool whole = (at == 0 || !word(at - 1)) && (end == message.size() || !word(end));
      if (!whole) {
        at = message.find(flag, end);
        continue;
      }
      message.replace(at, flag.size(), keyword);
      at = message.find(flag, at + keyword.size());
    }
  }
  return message;
}

}  // namespace shmbus::python
