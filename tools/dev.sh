#!/usr/bin/env bash
# tools/dev.sh: install what is missing (Debian 12, as root), build, and run.
#   tools/dev.sh demo   build (Release) and run the lifecycle demo (tools/demo.sh)
#   tools/dev.sh test   build and run every test: the suite (Release), the suite under
#                       ASan+UBSan, the concurrency tests under TSan, and every fuzz
#                       target for 10 s
#   tools/dev.sh bench  build (Release) and print the benchmark tables (IPC, persistence,
#                       Kafka bridge, Python), each with its baselines measured in the same run;
#                       the IPC and persistence results also go to JSON and PNG plots
#                       (bench/plot.py) in bench/results/ (BENCH_OUT to change it)
#   tools/dev.sh fuzz [SECONDS]  build the libFuzzer targets (build-fuzz, clang-14, ASan+UBSan)
#                       and run each for SECONDS (default 60) from its seed corpus
#                       (tests/fuzz/corpus/NAME); non-zero exit on any crash or hang
#   tools/dev.sh soak [MINUTES]  build (Release) and run the system soak for MINUTES (default
#                       60): producers, durable and tailing consumers, persister, replays,
#                       kill -9 of each kind; prints a summary, non-zero exit on a violation
#   tools/dev.sh package  build (Release) and make the Debian package with cpack:
#                       build/shmbus_VERSION_ARCH.deb (`apt install ./build/shmbus_*.deb`)
#   tools/dev.sh chaos [MINUTES]  build (Release) and run the protocol's chaos harness
#                       (tests/chaos) for MINUTES (default 10); prints the interleavings
#                       and kills, non-zero exit on a violation (the seed to replay it)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-demo}
jobs=${JOBS:-$(nproc)}

PACKAGES=(cmake ninja-build g++ pkg-config libboost-dev libconcurrentqueue-dev libpmem2-dev libisal-dev
  libpmem-dev libspdlog-dev libcli11-dev libgtest-dev libbenchmark-dev pybind11-dev
  python3-dev python3-pytest python3-numpy libzmq3-dev iceoryx libiceoryx-posh-dev
  libiceoryx-hoofs-dev librdkafka-dev libcpp-httplib-dev libncurses-dev help2man dpkg-dev)
# The fuzz targets need clang's libFuzzer and sanitizer runtimes.
case "${1:-}" in fuzz | test) PACKAGES+=(clang-14 libfuzzer-14-dev) ;; esac
# The Kafka bridge's interoperability tests (tests/bridge) use these clients; the demo's
# Kafka part uses kafka-python, as README says (without it, it fell back to shmbus itself
# on a fresh machine: a first-hour review).
case "${1:-}" in test) PACKAGES+=(kcat python3-kafka python3-confluent-kafka) ;; esac
case "${1:-}" in demo | "") PACKAGES+=(python3-kafka) ;; esac
# `shmbus metrics` and `stat --format prometheus` are checked with promtool; `shmbus top`
# is driven in tmux.
case "${1:-}" in test) PACKAGES+=(prometheus tmux) ;; esac
# The benchmark plots (bench/plot.py) and their test (ctest bench_plot) draw with matplotlib.
case "${1:-}" in bench | test) PACKAGES+=(python3-matplotlib) ;; esac

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then echo "run as root (or install: ${missing[*]})" >&2; exit 1; fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

build() {  # build DIR [cmake args...] [-- targets...]
  local dir=$1; shift
  local args=() targets=()
  while (($#)) && [ "$1" != "--" ]; do args+=("$1"); shift; done
  (($#)) && shift && targets=("$@")
  cmake -S . -B "$dir" -G Ninja -DPython3_EXECUTABLE=/usr/bin/python3 "${args[@]}" >/dev/null
  ninja -C "$dir" -j "$jobs" "${targets[@]}"
}

# Runs every fuzz target of build-fuzz for $1 seconds each on a copy of its seed corpus
# (the committed one never grows; crashes*/ reproducers are left out), $jobs at a time
# (one per core: the targets are single-threaded), and prints one line per target in
# their order.  Crash and hang inputs are kept in build-fuzz/fuzz-artifacts/.
run_fuzzers() {
  local seconds=$1 failed=0 work
  work=$(mktemp -d "${TMPDIR:-/tmp}/shmbus-fuzz.XXXXXX")
  # The targets' own scratch files (persist_index writes two per input) go to tmpfs:
  # ten times the executions per second of a disk.
  local scratch; scratch=$(mktemp -d /dev/shm/shmbus-fuzz-scratch.XXXXXX)
  local art="$PWD/build-fuzz/fuzz-artifacts"
  mkdir -p "$art"
  local targets target running=0
  targets=$(fuzz_targets)
  for target in $targets; do
    local bin=build-fuzz/tests/fuzz/$target
    local name=${target#fuzz_}
    local corpus="$work/$name"
    mkdir -p "$corpus" "$scratch/$name"
    if [ -d "tests/fuzz/corpus/$name" ]; then
      find "tests/fuzz/corpus/$name" -maxdepth 1 -type f -exec cp {} "$corpus/" \;
    fi
    if ((running >= jobs)); then
      wait -n || true
      running=$((running - 1))
    fi
    # -close_fd_mask=2: some parsers print a line per refusal (sanitizer reports still show).
    (
      rc=0
      TMPDIR="$scratch/$name" "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
        -print_final_stats=1 -close_fd_mask=2 -artifact_prefix="$art/$name-" "$corpus" \
        >"$work/$name.log" 2>&1 || rc=$?
      echo "$rc" >"$work/$name.rc"
    ) &
    running=$((running + 1))
  done
  wait
  printf '%-24s %12s %10s %8s\n' target executions exec/s crashes
  for target in $targets; do
    local name=${target#fuzz_} rc execs rate crashes=0
    rc=$(cat "$work/$name.rc" 2>/dev/null || echo 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$name.log" | tail -1)
    if ((rc != 0)); then
      crashes=1
      failed=1
    fi
    printf '%-24s %12s %10s %8s\n' "$name" "${execs:-?}" "${rate:-?}" "$crashes"
    if ((rc != 0)); then
      echo "== $name failed (exit $rc); the report:" >&2
      grep -E -A40 '^==[0-9]+==|^fuzz_|SUMMARY|Test unit written' "$work/$name.log" | head -60 >&2
    fi
  done
  rm -rf "$work" "$scratch"
  return $failed
}

# How many tests labelled kafka and not EXCLUDE ctest finds in DIR.
kafka_count() {  # kafka_count DIR EXCLUDE
  ctest --test-dir "$1" -N -L kafka -LE "$2" | sed -n 's/^Total Tests: //p'
}

# Runs the tests of build DIR but those labelled EXCLUDE (a ctest label regex), with ENV
# (NAME=VALUE words) for both runs: the Kafka bridge's tests (label kafka, a third to a half
# of the suite's time, most of it waiting on the mock cluster's rebalances and timeouts) in
# a second ctest beside the rest, its log printed after.  The rest run one test at a time;
# the kafka tests two at a time (they use ~50 s of CPU in ~400 s: run one at a time, the
# Release suite's kafka ctest took 405 s against the rest's 313; two at a time, alone, 226 s).
# That ctest runs in DIR/tests/bridge (where every kafka test is defined), so that each
# has its own Testing/Temporary: the two once shared LastTest.log.tmp, and a test that
# lists its descriptors saw the one it inherited from its ctest as deleted by the other.
suite() {  # suite DIR EXCLUDE [NAME=VALUE...]
  local dir=$1 exclude=$2; shift 2
  local kafka_log rc=0 kafka_rc=0
  local count_all count_bridge
  count_all=$(kafka_count "$dir" "$exclude")
  count_bridge=$(kafka_count "$dir/tests/bridge" "$exclude")
  if [ "$count_all" != "$count_bridge" ]; then
    echo "kafka tests outside tests/bridge: $count_all in $dir, $count_bridge there" >&2
    return 1
  fi
  kafka_log=$(mktemp "${TMPDIR:-/tmp}/shmbus-kafka-tests.XXXXXX")
  env "$@" ctest --test-dir "$dir/tests/bridge" --output-on-failure -L kafka -LE "$exclude" -j 2 \
    >"$kafka_log" 2>&1 &
  local kafka_pid=$!
  env "$@" ctest --test-dir "$dir" --output-on-failure -LE "$exclude|kafka" -j 1 || rc=$?
  wait "$kafka_pid" || kafka_rc=$?
  echo "== the kafka tests of $dir, run beside the rest:"
  cat "$kafka_log"
  rm -f "$kafka_log"
  ((rc == 0 && kafka_rc == 0))
}

# The test programs that hold the tests labelled tsan (threads racing in one process).
tsan_targets() { echo shm_unit_tests persist_integration_tests persist_unit_tests; }
# The fuzz targets: every tests/fuzz/fuzz_*.cc is one.
fuzz_targets() { for f in tests/fuzz/fuzz_*.cc; do basename "$f" .cc; done; }

install_missing
case "$mode" in
  demo)
    build build -DCMAKE_BUILD_TYPE=Release
    tools/demo.sh build
    ;;
  test)
    # The sanitizer and fuzz builds are unity builds (CMAKE_UNITY_BUILD: a few sources per
    # compiler run, half the build time here: 207 against 386 s for build-asan); the
    # Release build, whose binaries are the product's, compiles every source of the
    # library and the tools alone (its test programs are unity builds: tests/CMakeLists.txt).
    # The ASan suite's full-speed persister test stores 500k records instead of 2M
    # (SHMBUS_IT_RECORDS; the Release suite stores the 2M).  In both suites the Kafka
    # tests run beside the others (suite above).
    started=$SECONDS
    phase() { echo "== $* (at $((SECONDS - started)) s)"; }
    phase "Release build: the whole suite (unit, multi-process, faults, CLI, persist, python)"
    build build -DCMAKE_BUILD_TYPE=Release
    suite build soak
    phase "ASan+UBSan build: the whole suite"
    build build-asan -DCMAKE_BUILD_TYPE=Debug -DSHMBUS_SANITIZE=address,undefined \
      -DSHMBUS_BUILD_BENCH=OFF -DSHMBUS_BUILD_PYTHON=OFF -DCMAKE_UNITY_BUILD=ON
    suite build-asan 'soak|python' SHMBUS_IT_RECORDS=500000 ASAN_OPTIONS=detect_leaks=1 \
      UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    phase "TSan build: the concurrency tests"
    build build-tsan -DCMAKE_BUILD_TYPE=Debug -DSHMBUS_SANITIZE=thread \
      -DSHMBUS_BUILD_BENCH=OFF -DSHMBUS_BUILD_PYTHON=OFF -DCMAKE_UNITY_BUILD=ON -- $(tsan_targets)
    TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -L tsan -j 1
    phase "libFuzzer: every fuzz target for 10 s from its seed corpus"
    build build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
      -DSHMBUS_FUZZ=ON -DSHMBUS_BUILD_BENCH=OFF -DSHMBUS_BUILD_PYTHON=OFF -DCMAKE_UNITY_BUILD=ON \
      -- $(fuzz_targets)
    run_fuzzers 10
    phase "done"
    ;;
  bench)
    build build -DCMAKE_BUILD_TYPE=Release
    out=${BENCH_OUT:-bench/results}
    mkdir -p "$out"
    build/bench/shmbus-bench --json "$out/bench.json" "${@:2}"
    build/bench/shmbus-persist-bench --json "$out/persist.json"
    build/bench/shmbus-bridge-bench
    PYTHONPATH=build/bindings/pkg /usr/bin/python3 bench/python/python_bench.py
    /usr/bin/python3 bench/plot.py --bench "$out/bench.json" --persist "$out/persist.json" --out "$out"
    ;;
  package)
    build build -DCMAKE_BUILD_TYPE=Release
    (cd build && cpack -G DEB)
    ls build/shmbus_*.deb
    ;;
  fuzz)
    seconds=${2:-60}
    build build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
      -DSHMBUS_FUZZ=ON -DSHMBUS_BUILD_BENCH=OFF -DSHMBUS_BUILD_PYTHON=OFF -DCMAKE_UNITY_BUILD=ON \
      -- $(fuzz_targets)
    run_fuzzers "$seconds"
    ;;
  soak)
    minutes=${2:-60}
    build build -DCMAKE_BUILD_TYPE=Release -- shmbus_soak shmbus_cli
    build/tests/soak/shmbus_soak --minutes "$minutes" --cli build/tools/shmbus "${@:3}"
    ;;
  chaos)
    minutes=${2:-10}
    build build -DCMAKE_BUILD_TYPE=Release -- shmbus_chaos
    build/tests/chaos/shmbus_chaos --minutes "$minutes" --seconds 20 "${@:3}"
    ;;
  *) echo "usage: tools/dev.sh demo|test|bench|package|fuzz [SECONDS]|soak [MINUTES]|chaos [MINUTES]" >&2; exit 2 ;;
esac
