"""The type stubs (shmbus/__init__.pyi) declare what the module has."""

import ast
import os

import shmbus


def stub_tree():
    with open(os.path.join(os.path.dirname(shmbus.__file__), "__init__.pyi")) as f:
        return ast.parse(f.read())


def test_every_public_name_and_member_is_in_the_stubs():
    tree = stub_tree()
    top, classes = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            top.add(node.name)
        if isinstance(node, ast.ClassDef):
            classes[node.name] = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        if isinstance(node, ast.ImportFrom):
            top.update(a.asname or a.name for a in node.names)
        if isinstance(node, ast.AnnAssign):
            top.add(node.target.id)
    missing = [n for n in shmbus.__all__ if n not in top]
    assert missing == []
    for name, members in classes.items():
        runtime = getattr(shmbus, name, None)
        if runtime is None:
            continue  # TypedDicts of the stubs only
        public = {m for m in vars(runtime) if not m.startswith("_")}
        assert public - members == set(), name


def _imported_from_errors(path):
    """The names a module file imports from .errors."""
    with open(path) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "errors" and node.level == 1:
            names.update(a.name for a in node.names)
    return names


def test_error_names_agree():
    """The error classes agree in every place: the C++ side's list (errors.cc, through
    _shmbus._error_classes), shmbus/errors.py (the classes and __all__), shmbus/__init__.py
    (what it imports and exports; TimeoutError aside: it would shadow the builtin) and the
    stub __init__.pyi (what it re-exports)."""
    import shmbus.errors as errors
    from shmbus import _shmbus

    cpp = [row[0] for row in _shmbus._error_classes()]
    assert len(cpp) == len(set(cpp))
    names = set(cpp)
    assert set(errors.__all__) == names
    defined = {n for n, o in vars(errors).items() if isinstance(o, type) and issubclass(o, errors.Error)}
    assert defined == names
    pkg = os.path.dirname(shmbus.__file__)
    assert _imported_from_errors(os.path.join(pkg, "__init__.py")) == names
    assert _imported_from_errors(os.path.join(pkg, "__init__.pyi")) == names
    assert {n for n in shmbus.__all__ if n in names} == names - {"TimeoutError"}
    for name in names:
        assert getattr(shmbus, name) is getattr(errors, name), name
    assert issubclass(shmbus.EvictedError, shmbus.Error)
    assert shmbus.EvictedError.code == "evicted"


def test_error_signatures_agree():
    """Each class takes the arguments the C++ side raises it with, declares the attributes
    it sets, and has its code; an Errc is raised as the class whose code it is (kTruncated
    aside: a CorruptError with code "truncated")."""
    import inspect

    import shmbus.errors as errors
    from shmbus import _shmbus

    for name, code, args, attrs, errcs in _shmbus._error_classes():
        cls = getattr(errors, name)
        assert issubclass(cls, errors.Error), name
        assert cls.code == code, name
        assert set(errcs) <= {code, "truncated"}, (name, errcs)
        own_init = [k for k in cls.__mro__ if k.__module__ == errors.__name__ and "__init__" in vars(k)]
        if args == ("message",):
            assert own_init == [], name  # the message only, as Exception takes it
            assert cls("m").args == ("m",)
        else:
            params = list(inspect.signature(cls.__init__).parameters)[1:]
            assert tuple(params) == args, name
            e = cls(*range(len(args)))
            for a in args:
                assert hasattr(e, a), (name, a)
        for a in attrs:
            assert a in vars(cls) or a in getattr(cls, "__annotations__", {}), (name, a)
    raised = {e for row in _shmbus._error_classes() for e in row[4]}
    assert "truncated" in raised and "not found" in raised


# ---- signatures ----------------------------------------------------------------------
# Each function and method of the stubs is compared with the module's: parameter names,
# kinds (positional, keyword-only, *args, **kwargs) and whether each has a default.
# Pure-Python callables are read with inspect.signature; pybind11's with the signature
# line pybind11 puts first in their __doc__ ("name(self: T, a: int, *, b: str = 'x') -> R").

import inspect

_POS, _KW, _VAR, _VARKW = "positional", "keyword-only", "*args", "**kwargs"


def _stub_params(fn, drop_self):
    a = fn.args
    pos = a.posonlyargs + a.args
    first_default = len(pos) - len(a.defaults)
    out = [(p.arg, _POS, i >= first_default) for i, p in enumerate(pos)]
    if a.vararg:
        out.append((a.vararg.arg, _VAR, False))
    out += [(p.arg, _KW, d is not None) for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    if a.kwarg:
        out.append((a.kwarg.arg, _VARKW, False))
    return out[1:] if drop_self else out


def _split_top(text):
    """Splits at commas outside brackets and quotes."""
    parts, depth, quote, cur = [], 0, None, ""
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _pybind_params(obj, name, drop_self):
    doc = obj.__doc__ or ""
    first = doc.lstrip().splitlines()[0] if doc.strip() else ""
    assert first.startswith(name + "("), f"{name}: no pybind11 signature line in __doc__: {first!r}"
    depth, end = 0, None
    for i, ch in enumerate(first):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                end = i
                break
    inner = first[len(name) + 1:end]
    out, kind = [], _POS
    for part in _split_top(inner):
        if part == "*":
            kind = _KW
            continue
        if part == "/":
            continue
        has_default = "=" in part.split(":", 1)[-1] if ":" in part else "=" in part
        pname = part.split(":", 1)[0].split("=", 1)[0].strip()
        if pname.startswith("**"):
            out.append((pname[2:], _VARKW, False))
        elif pname.startswith("*"):
            out.append((pname[1:], _VAR, False))
            kind = _KW
        else:
            out.append((pname, kind, has_default))
    return out[1:] if drop_self else out


def _runtime_params(obj, name, drop_self):
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        out = []
        for p in inspect.signature(obj).parameters.values():
            kind = {
                p.POSITIONAL_ONLY: _POS,
                p.POSITIONAL_OR_KEYWORD: _POS,
                p.KEYWORD_ONLY: _KW,
                p.VAR_POSITIONAL: _VAR,
                p.VAR_KEYWORD: _VARKW,
            }[p.kind]
            out.append((p.name, kind, p.default is not p.empty))
        return out[1:] if drop_self and not inspect.ismethod(obj) else out
    return _pybind_params(obj, name, drop_self)


def _stub_callables():
    """(qualified name, ast node, runtime object, drop_self) for each stub function."""
    import shmbus

    out = []
    for node in stub_tree().body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append((node.name, node, getattr(shmbus, node.name), False))
        if isinstance(node, ast.ClassDef) and hasattr(shmbus, node.name):
            cls = getattr(shmbus, node.name)
            for fn in node.body:
                if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                decorators = {d.id for d in fn.decorator_list if isinstance(d, ast.Name)}
                if "property" in decorators:
                    # a property (pybind11) or a getset descriptor (the raw CPython types)
                    raw = inspect.getattr_static(cls, fn.name)
                    assert inspect.isdatadescriptor(raw) and not callable(raw), (node.name, fn.name)
                    continue
                if fn.name == "__buffer__" and not hasattr(cls, fn.name):
                    continue  # the buffer protocol: a C slot, not a method, before Python 3.12
                # a staticmethod has no self; a classmethod's cls is bound at runtime
                out.append((f"{node.name}.{fn.name}", fn, getattr(cls, fn.name),
                            "staticmethod" not in decorators))
    return out


# Callables that forward (*args, **kwargs) to another: their stub is the target's signature.
_FORWARDS = {"Persister.start": "Persister.__init__"}


def test_stub_signatures_match_the_module():
    import shmbus

    checked = 0
    for qual, node, obj, drop_self in _stub_callables():
        name = qual.rsplit(".", 1)[-1]
        stub = _stub_params(node, drop_self)
        if type(obj).__name__ in ("wrapper_descriptor", "slot wrapper"):
            continue  # a C slot of the raw CPython types (Record.__len__): no signature to read
        runtime = _runtime_params(obj, name, drop_self)
        if qual in _FORWARDS:
            assert [k for _, k, _ in runtime] == [_VAR, _VARKW], qual
            cls, target = _FORWARDS[qual].split(".")
            runtime = _runtime_params(getattr(getattr(shmbus, cls), target), target, True)
        if name.startswith("__") and name != "__init__":
            # Dunders: the protocol fixes the arguments; pybind11 names them arg0, arg1...
            assert len(stub) == len(runtime), (qual, stub, runtime)
        else:
            assert stub == runtime, qual
        if isinstance(node, ast.AsyncFunctionDef):
            assert inspect.iscoroutinefunction(obj), qual
        checked += 1
    assert checked > 40


def test_signature_check_sees_a_mismatch():
    """The comparison fails on a stub that differs in a name, a kind or a default."""
    import shmbus

    good = ast.parse("def poll(self, timeout: float = None): ...").body[0]
    obj = shmbus.Consumer.poll
    assert _stub_params(good, True) == _runtime_params(obj, "poll", True)
    for bad in ("def poll(self, t=None): ...", "def poll(self, *, timeout=None): ...",
                "def poll(self, timeout): ...", "def poll(self): ..."):
        node = ast.parse(bad).body[0]
        assert _stub_params(node, True) != _runtime_params(obj, "poll", True), bad
    ok = ast.parse("def stat(name, *, namespace=None, interval=None, stall=1.0, data_dir=None): ...").body[0]
    assert _stub_params(ok, False) == _runtime_params(shmbus.stat, "stat", False)
    bad = ast.parse("def stat(name, namespace=None, *, interval=None, stall=1.0, data_dir=None): ...").body[0]
    assert _stub_params(bad, False) != _runtime_params(shmbus.stat, "stat", False)
