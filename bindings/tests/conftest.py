"""Shared fixtures: a unique namespace per test, streams removed afterwards.

Run with Debian's interpreter and the built package on the path, as CTest does:
    PYTHONPATH=<build>/bindings/pkg /usr/bin/python3 -m pytest -q bindings/tests
"""

import itertools
import os
import subprocess
import sys

import pytest

import shmbus

_counter = itertools.count()


def pytest_report_header(config):
    return f"shmbus {shmbus.__version__} from {os.path.dirname(shmbus.__file__)}"


@pytest.fixture
def ns():
    """A namespace no other test (or test run) uses; its streams are removed at the end."""
    name = f"py{os.getpid()}_{next(_counter)}"
    yield name
    for stream in shmbus.ls(name):
        shmbus.remove(stream, namespace=name, force=True)


@pytest.fixture
def stream(ns):
    """A 1 MiB stream "s" in the test's namespace."""
    shmbus.create("s", capacity="1M", namespace=ns)
    return "s"


def run_python(code, *args, timeout=120, env=None, **kw):
    """Runs `code` in a new interpreter (this one) with the same sys.path, in `env` (the
    environment by default)."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def spawn_python(code, *args, **kw):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, **kw)
