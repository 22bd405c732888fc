// common.cc: see common.h.
#include "common.h"

#include <pthread.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "errors.h"

namespace shmbus::python {

namespace {
// relaxed: written only in the single-threaded child right after fork().
std::atomic<uint64_t> g_generation{1};
void bump_generation() noexcept { g_generation.fetch_add(1, std::memory_order_relaxed); }
}  // namespace

uint64_t fork_generation() noexcept { return g_generation.load(std::memory_order_relaxed); }

void install_fork_handler() {
  static bool installed = false;
  if (!installed) {
    pthread_atfork(nullptr, nullptr, bump_generation);
    installed = true;
  }
}

namespace {
destructor g_pybind11_dealloc = nullptr;  // pybind11_object's, which every class inherits
void untracking_dealloc(PyObject* self) {
  PyObject_GC_UnTrack(self);  // (a no-op when a subclass's dealloc did it)
  g_pybind11_dealloc(self);
}
}  // namespace

void untrack_before_dealloc(PyHeapTypeObject* heap_type) {
  PyTypeObject* type = &heap_type->ht_type;
  // Not set yet when pybind11 calls this: inherited from tp_base (pybind11_object) later.
  const destructor base = type->tp_dealloc ? type->tp_dealloc : type->tp_base->tp_dealloc;
  if (base == nullptr || (g_pybind11_dealloc != nullptr && g_pybind11_dealloc != base))
    throw std::logic_error("untrack_before_dealloc: a class whose dealloc is not pybind11_object's");
  g_pybind11_dealloc = base;
  type->tp_dealloc = untracking_dealloc;
}

std::optional<std::chrono::nanoseconds> to_timeout(py::handle seconds, const char* what, bool none_waits) {
  constexpr double kForever = 1e9;  // ~31 years and more: wait forever
  PyObject* o = seconds.ptr();
  const auto refuse = [&] {
    throw py::type_error(std::string(what) + " must be a number of seconds" + (none_waits ? " or None" : "") +
                         ", not " + std::string(py::str(py::type::of(seconds).attr("__name__"))));
  };
  if (seconds.is_none()) {
    if (!none_waits) refuse();
    return std::nullopt;
  }
  // Not a number of seconds though they convert: truth values (numpy's too) and arrays
  // (numpy's one-element ones convert to a float).
  if (PyBool_Check(o) || PyUnicode_Check(o) || PyBytes_Check(o) || PySequence_Check(o)) refuse();
  {
    const std::string type_name = Py_TYPE(o)->tp_name;
    if (type_name == "numpy.bool_" || type_name == "numpy.bool") refuse();
  }
  const PyNumberMethods* num = Py_TYPE(o)->tp_as_number;
  double s;
  if (PyLong_Check(o) || (!PyFloat_Check(o) && num && !num->nb_float && num->nb_index)) {
    // An int of any size (one beyond a double's range means forever, not an error), or
    // an integer-only type of another library.
    py::int_ n = py::reinterpret_steal<py::int_>(PyNumber_Index(o));
    if (!n) throw py::error_already_set();
    if (n > py::int_(static_cast<long long>(kForever))) return std::nullopt;
    s = n < py::int_(0) ? -1.0 : static_cast<double>(n.cast<long long>());
  } else if (PyFloat_Check(o) || (num && num->nb_float)) {
    // float and what converts to one (numpy.int64, numpy.float32, Decimal, Fraction).
    s = PyFloat_AsDouble(o);
    if (s == -1.0 && PyErr_Occurred()) {
      // Too large for a double (Fraction(10**400)): forever when positive, as an int.
      // No number at all (Decimal('sNaN')): as NaN.
      if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
        PyErr_Clear();
        py::int_ zero(0);
        const int positive = PyObject_RichCompareBool(o, zero.ptr(), Py_GT);
        if (positive < 0) throw py::error_already_set();
        if (positive) return std::nullopt;
        s = -1.0;
      } else if (PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear();
        s = std::nan("");
      } else {
        throw py::error_already_set();
      }
    }
  } else {
    refuse();
  }
  if (std::isnan(s) || s < 0)
    throw_error(Errc::kInvalidArgument,
                std::string(what) + " must be >= 0 seconds" + (none_waits ? " (or None to wait forever)" : ""));
  if (s > kForever) return std::nullopt;  // (and inf)
  return std::chrono::nanoseconds(static_cast<int64_t>(s * 1e9));
}

bool is_index(const py::handle& v) noexcept {
  PyObject* o = v.ptr();
  if (PyBool_Check(o)) return false;
  if (PyLong_Check(o)) return true;
  if (PyFloat_Check(o) || !PyIndex_Check(o)) return false;
  const std::string type_name = Py_TYPE(o)->tp_name;
  return type_name != "numpy.bool_" && type_name != "numpy.bool";
}

uint64_t uint64_arg(const py::handle& v, const std::string& what) {
  const py::int_ i = py::reinterpret_steal<py::int_>(PyNumber_Index(v.ptr()));
  if (!i) throw py::error_already_set();
  if (py::int_(0) > i) throw_error(Errc::kInvalidArgument, what + " must be >= 0");
  if (i > py::int_(std::numeric_limits<uint64_t>::max()))
    throw_error(Errc::kInvalidArgument, what + " must be at most 2**64 - 1, not " + py::str(v).cast<std::string>());
  return i.cast<uint64_t>();
}

uint64_t count_arg(const py::handle& v, const char* what) {
  if (!is_index(v))
    throw py::type_error(std::string(what) + " must be an int, not " +
                         std::string(py::str(py::type::of(v).attr("__name__"))));
  const py::int_ i = py::reinterpret_steal<py::int_>(PyNumber_Index(v.ptr()));
  if (!i) throw py::error_already_set();
  if (py::int_(1) > i) throw_error(Errc::kInvalidArgument, std::string(what) + " must be >= 1");
  if (i > py::int_(std::numeric_limits<uint64_t>::max())) return std::numeric_limits<uint64_t>::max();
  return i.cast<uint64_t>();
}

uint64_t size_arg(const py::object& v, const char* what) {
  if (py::isinstance<py::str>(v)) return unwrap(parse_size(v.cast<std::string>()));
  if (is_index(v)) return uint64_arg(v, what);
  throw py::type_error(std::string(what) + " must be an int (bytes) or a str like '64M', not " +
                       std::string(py::str(py::type::of(v).attr("__name__"))));
}

WaitStrategy to_wait_strategy(std::string_view s) {
  if (s == "block") return WaitStrategy::kBlock;
  if (s == "spin") return WaitStrategy::kBusySpin;
  if (s == "yield") return WaitStrategy::kSpinYield;
  throw_error(Errc::kInvalidArgument,
              "wait must be 'block', 'yield' or 'spin', not '" + std::string(s) + "'");
}

const char* name_state_text(NameState s) noexcept {
  switch (s) {
    case NameState::kRemoved: return "removed";
    case NameState::kReplaced: return "replaced";
    case NameState::kSame: break;
  }
  return "same";
}

std::string namespace_of(const py::object& ns) {
  if (ns.is_none()) return resolve_namespace();
  if (!py::isinstance<py::str>(ns))
    throw py::type_error("namespace must be a str or None, not " +
                         std::string(py::str(py::type::of(ns).attr("__name__"))));
  return resolve_namespace(ns.cast<std::string>());
}

Deadline::Deadline(std::optional<std::chrono::nanoseconds> timeout)
    : forever_(!timeout),
      at_(std::chrono::steady_clock::now() + timeout.value_or(std::chrono::nanoseconds(0))) {}

bool Deadline::passed() const noexcept {
  return !forever_ && std::chrono::steady_clock::now() >= at_;
}

std::chrono::nanoseconds Deadline::next_slice(std::chrono::nanoseconds slice) const noexcept {
  if (forever_) return slice;
  auto left = at_ - std::chrono::steady_clock::now();
  if (left <= std::chrono::nanoseconds(0)) return std::chrono::nanoseconds(0);
  return std::min<std::chrono::nanoseconds>(left, slice);
}

void check_signals() {
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

BufferArg::BufferArg(py::handle obj, bool writable) {
  if (!PyObject_CheckBuffer(obj.ptr()))
    throw py::type_error("a bytes-like object is required (bytes, bytearray, memoryview, "
                         "numpy array...), not '" +
                         std::string(py::str(py::type::of(obj).attr("__name__"))) + "'");
  // PyBUF_SIMPLE: the raw bytes of a C-contiguous object (BufferError otherwise).
  if (PyObject_GetBuffer(obj.ptr(), &view_, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) != 0)
    throw py::error_already_set();
  held_ = true;
}

BufferArg::BufferArg(BufferArg&& o) noexcept : view_(o.view_), held_(o.held_) { o.held_ = false; }

BufferArg::~BufferArg() {
  if (held_) PyBuffer_Release(&view_);
}

std::string path_arg(const py::object& path, const char* what) {
  if (path.is_none()) return {};
  py::object p = py::module_::import("os").attr("fspath")(path);
  if (!py::isinstance<py::str>(p))
    throw py::type_error(std::string(what) + " must be a str or os.PathLike of str");
  return p.cast<std::string>();
}

}  // namespace shmbus::python
