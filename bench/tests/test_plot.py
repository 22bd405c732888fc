"""bench/plot.py draws the committed sample JSON (bench/testdata) into valid PNGs."""

import json
import os
import struct
import subprocess
import sys
import zlib

import pytest

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLOT = os.path.join(BENCH, "plot.py")
SAMPLE_BENCH = os.path.join(BENCH, "testdata", "bench-sample.json")
SAMPLE_PERSIST = os.path.join(BENCH, "testdata", "persist-sample.json")
PNGS = ("latency.png", "throughput.png", "persister.png", "replay.png")


def run(*args, env=None):
    return subprocess.run([sys.executable, PLOT, *args], capture_output=True, text=True,
                          timeout=120, env=env)


def png_size(path):
    """(width, height) of a PNG whose every chunk's CRC is right; raises otherwise."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, chunks = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert zlib.crc32(kind + body) == crc, (path, kind)
        chunks.append(kind)
        pos += 12 + n
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks, (path, chunks)
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_plots_from_the_sample_json(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "plots"
    r = run("--bench", SAMPLE_BENCH, "--persist", SAMPLE_PERSIST, "--out", str(out))
    assert r.returncode == 0, r.stderr
    for name in PNGS:
        path = out / name
        assert path.stat().st_size > 10_000, name  # a drawing, not an empty canvas
        w, h = png_size(path)
        assert w >= 500 and h >= 400, (name, w, h)


def test_a_plot_shows_every_latency_row(tmp_path):
    """Each latency row of the input (and no n/a row) is a line of the latency plot."""
    sys.path.insert(0, BENCH)
    try:
        import plot
    finally:
        sys.path.remove(BENCH)
    with open(SAMPLE_BENCH) as f:
        doc = json.load(f)
    names = [n for n, _ in plot.latency_series(doc)[0]]
    assert names == [r["name"] for r in doc["rows"] if "latency_ns" in r and not r.get("na")]
    assert "shmbus durable (publish)" in names and len(names) >= 5
    sizes = {n: [p[0] for p in pts] for n, pts in plot.throughput_series(doc)}
    assert sizes["shmbus durable (publish)"] == [64, 1024, 65536]


def test_bad_input_is_a_one_line_error(tmp_path):
    pytest.importorskip("matplotlib")
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": [{"name": "x", "latency_ns": {"p50": "fast"}}]}')
    for args in (["--bench", str(bad)], ["--bench", str(tmp_path / "missing.json")],
                 ["--persist", SAMPLE_BENCH.replace(".json", ".nope")]):
        r = run(*args, "--out", str(tmp_path / "o"))
        assert r.returncode == 1, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("bench/plot.py: "), r.stderr
    not_json = tmp_path / "not.json"
    not_json.write_text("[1, 2")
    r = run("--bench", str(not_json), "--out", str(tmp_path / "o"))
    assert r.returncode == 1 and "not valid JSON" in r.stderr


def test_without_matplotlib_it_says_so_and_writes_nothing(tmp_path):
    # A meta-path finder that refuses matplotlib, then the script as __main__.
    code = (
        "import sys, runpy\n"
        "class NoMpl:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'matplotlib':\n"
        "            raise ImportError('no matplotlib here')\n"
        "sys.meta_path.insert(0, NoMpl())\n"
        f"sys.argv = [{PLOT!r}] + sys.argv[1:]\n"
        f"runpy.run_path({PLOT!r}, run_name='__main__')\n"
    )
    out = tmp_path / "o"
    r = subprocess.run([sys.executable, "-c", code, "--bench", SAMPLE_BENCH, "--out", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "matplotlib is not installed" in r.stderr
    assert not out.exists()
