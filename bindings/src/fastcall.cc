// fastcall.cc: see fastcall.h.
#include "fastcall.h"

#include <exception>
#include <string>

#include "errors.h"

namespace shmbus::python {

void install_fastcall(py::handle cls, PyMethodDef& def) {
  // The pybind11 method's doc, kept for ever alongside the static `def`.
  auto* doc = new std::string(py::str(cls.attr(def.ml_name).attr("__doc__")));
  def.ml_doc = doc->c_str();
  PyObject* descr = PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), &def);
  if (!descr) throw py::error_already_set();
  py::setattr(cls, def.ml_name, py::reinterpret_steal<py::object>(descr));
}

void set_error_from_current_exception() noexcept {
  try {
    throw;
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const py::builtin_exception& e) {
    e.set_error();
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception");
  }
}

bool parse_fastcall(const char* function, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                    const char* const* names, int n_names, int required, PyObject** out) noexcept {
  if (nargs > n_names) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %d positional arguments (%zd given)", function, n_names,
                 nargs);
    return false;
  }
  for (int i = 0; i < n_names; ++i) out[i] = i < nargs ? args[i] : nullptr;
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, k);
    int i = 0;
    while (i < n_names && PyUnicode_CompareWithASCIIString(key, names[i]) != 0) ++i;
    if (i == n_names) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", function, key);
      return false;
    }
    if (out[i]) {
      PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", function, names[i]);
      return false;
    }
    out[i] = args[nargs + k];
  }
  for (int i = 0; i < required; ++i)
    if (!out[i]) {
      PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", function, names[i]);
      return false;
    }
  return true;
}

bool uint32_arg(const char* function, const char* name, PyObject* v, uint32_t* out) noexcept {
  if (!PyFloat_Check(v)) {
    // An int as it is; any other number through int() (__index__, __int__: numpy scalars,
    // Decimal, ...), as pybind11's integer caster converts one.
    PyObject* i = nullptr;
    if (PyLong_Check(v)) {
      Py_INCREF(v);
      i = v;
    } else if (PyNumber_Check(v)) {
      i = PyNumber_Long(v);
      // The number's own error (its __index__ or __int__ raised, returned no int, Ctrl-C
      // in it): that one, not a range message (reviews); only an int too large for a
      // C long is ours, below.
      if (!i && !PyErr_ExceptionMatches(PyExc_OverflowError)) return false;
    }
    if (i) {
      const unsigned long long x = PyLong_AsUnsignedLongLong(i);
      Py_DECREF(i);
      if (!(x == static_cast<unsigned long long>(-1) && PyErr_Occurred()) && x <= UINT32_MAX) {
        *out = static_cast<uint32_t>(x);
        return true;
      }
    }
    PyErr_Clear();
  }
  // The type's name, not the value's repr (which may itself fail, or be huge).  An int
  // out of range is a bad value (InvalidArgumentError, a ValueError, as every other int
  // argument's range), not a bad type (it was a TypeError: a review).
  if (PyLong_Check(v) || (!PyFloat_Check(v) && PyIndex_Check(v) && !PyBool_Check(v))) {
    try {
      throw_error(Errc::kInvalidArgument,
                  std::string(function) + "(): " + name + " must be in 0..4294967295");
    } catch (py::error_already_set& e) {
      e.restore();
    } catch (...) {
      set_error_from_current_exception();
    }
  } else
    PyErr_Format(PyExc_TypeError, "%s(): %s must be an int in 0..4294967295, not '%.200s'", function, name,
                 Py_TYPE(v)->tp_name);
  return false;
}

}  // namespace shmbus::python
