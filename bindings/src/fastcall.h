// fastcall.h: methods on the hottest paths bound as METH_FASTCALL, beside pybind11.
//
// pybind11 2.10's dispatcher costs about 150 ns a call here (it allocates the argument
// vector and looks types up by hashed name; pybind/pybind11#2810 measures 438 against 74
// ns for a direct CPython binding): more than a 64-byte publish itself.  Such a method is
// first bound through pybind11 as usual (its docstring and signature line stay what
// pybind11 wrote: stubs and help() read them), then replaced on the class by a method
// descriptor over a plain vectorcall function.  The function takes the same arguments as
// pybind11 would (names, conversions; TypeError for bad ones, in CPython's wording) and
// raises what the pybind11 version raised.
#pragma once

#include <typeinfo>

#include "common.h"

namespace shmbus::python {

// Replaces `cls.<def.ml_name>` by a method descriptor over `def` (METH_FASTCALL |
// METH_KEYWORDS), whose doc becomes the pybind11 method's.  `def` must live for ever
// (a static).  Thread: GIL held, at module import.
void install_fastcall(py::handle cls, PyMethodDef& def);

// The C++ object of type T behind `self`, an instance of the class bound for T or of a
// Python subclass (the method descriptor has checked that): nullptr with TypeError set if
// it has none yet (made with __new__ alone).  pybind11's own caster would allocate an
// uninitialized T there and call the method on it.
template <class T>
T* self_of(PyObject* self) noexcept {
  static const py::detail::type_info* const type = py::detail::get_type_info(typeid(T));
  if (type) {
    auto* inst = reinterpret_cast<py::detail::instance*>(self);
    const py::detail::value_and_holder vh = inst->get_value_and_holder(type, /*throw_if_missing=*/false);
    if (vh && vh.holder_constructed()) return vh.template value_ptr<T>();
  }
  PyErr_SetString(PyExc_TypeError, "this method needs an initialized shmbus object as self (was __init__ called?)");
  return nullptr;
}

// Sets the Python error for the exception being handled: the error already set
// (error_already_set), pybind11's builtin exceptions, MemoryError, else RuntimeError
// (pybind11's dispatcher maps a few more std exceptions; none is thrown on these paths).
// Call it only inside a catch block.
void set_error_from_current_exception() noexcept;

// Arguments of a vectorcall: `nargs` positional ones, then one per name in `kwnames`.
// Fills `out[i]` for each of `names` (borrowed; nullptr when not given).  false with
// TypeError set for too many positional arguments, an unknown or repeated keyword, or a
// missing required one (the first `required` names).
bool parse_fastcall(const char* function, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                    const char* const* names, int n_names, int required, PyObject** out) noexcept;

// A uint32 argument as pybind11 converts one (an int, or a number other than a float
// through int(), in 0..2^32-1): false with TypeError set otherwise.
bool uint32_arg(const char* function, const char* name, PyObject* v, uint32_t* out) noexcept;

}  // namespace shmbus::python
