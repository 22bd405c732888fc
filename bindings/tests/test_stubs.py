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
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top.add(node.name)
        if isinstance(node, ast.ClassDef):
            classes[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
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
