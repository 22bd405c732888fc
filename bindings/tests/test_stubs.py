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


def test_error_names_agree():
    """Every error class of shmbus.errors is exported by shmbus (TimeoutError aside: it
    would shadow the builtin) and raised with its own code."""
    import shmbus.errors as errors

    for name in errors.__all__:
        assert hasattr(shmbus, name), name
        assert name in shmbus.__all__ or name == "TimeoutError", name
    assert issubclass(shmbus.EvictedError, shmbus.Error)
    assert shmbus.EvictedError.code == "evicted"
