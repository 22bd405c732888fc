#!/usr/bin/env bash
# tools/dev.sh: install what is missing (Debian 12, as root), build, and run.
#   tools/dev.sh demo   build (Release) and run the lifecycle demo (tools/demo.sh)
#   tools/dev.sh test   build and run every test: the suite (Release), the suite under
#                       ASan+UBSan, and the concurrency tests under TSan
#   tools/dev.sh bench  build (Release) and print the benchmark tables (IPC, persistence,
#                       Python), each with its baselines measured in the same run
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-demo}
jobs=${JOBS:-$(nproc)}

PACKAGES=(cmake ninja-build g++ pkg-config libboost-dev libconcurrentqueue-dev libpmem2-dev
  libpmem-dev libspdlog-dev libcli11-dev libgtest-dev libbenchmark-dev pybind11-dev
  python3-dev python3-pytest python3-numpy libzmq3-dev iceoryx libiceoryx-posh-dev
  libiceoryx-hoofs-dev)

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

# The test programs that hold the tests labelled tsan (threads racing in one process).
tsan_targets() { echo shm_unit_tests persist_integration_tests; }

install_missing
case "$mode" in
  demo)
    build build -DCMAKE_BUILD_TYPE=Release
    tools/demo.sh build
    ;;
  test)
    echo "== Release build: the whole suite (unit, multi-process, faults, CLI, persist, python)"
    build build -DCMAKE_BUILD_TYPE=Release
    ctest --test-dir build --output-on-failure -LE soak -j 1
    echo "== ASan+UBSan build: the whole suite"
    build build-asan -DCMAKE_BUILD_TYPE=Debug -DSHMBUS_SANITIZE=address,undefined \
      -DSHMBUS_BUILD_BENCH=OFF -DSHMBUS_BUILD_PYTHON=OFF
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      ctest --test-dir build-asan --output-on-failure -LE 'soak|python' -j 1
    echo "== TSan build: the concurrency tests"
    build build-tsan -DCMAKE_BUILD_TYPE=Debug -DSHMBUS_SANITIZE=thread \
      -DSHMBUS_BUILD_BENCH=OFF -DSHMBUS_BUILD_PYTHON=OFF -- $(tsan_targets)
    TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -L tsan -j 1
    ;;
  bench)
    build build -DCMAKE_BUILD_TYPE=Release
    build/bench/shmbus-bench "${@:2}"
    build/bench/shmbus-persist-bench
    PYTHONPATH=build/bindings/pkg /usr/bin/python3 bench/python/python_bench.py
    ;;
  *) echo "usage: tools/dev.sh demo|test|bench" >&2; exit 2 ;;
esac
