#!/usr/bin/env bash
# tests/install/install_prefix.sh BUILD SRC SANITIZE HAVE_PYTHON HELP2MAN
# Installs BUILD into a temporary prefix, checks what is there, builds examples/ against
# it through find_package and pkg-config and runs them, and runs the Python example.
set -euo pipefail
build=$1 src=$2 sanitize=$3 have_python=$4 help2man=$5
work=$(mktemp -d "${TMPDIR:-/tmp}/shmbus-install.XXXXXX")
ns="install$$"
prefix=$work/prefix
fail() { echo "install_prefix: $*" >&2; exit 1; }
cleanup() {
  for s in cmake cmake_static pkgconfig; do
    "$prefix/bin/shmbus" rm --force --namespace "$ns" "$s" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; fail "cmake --install failed"; }

# Everything under the prefix (an absolute destination would write outside it).
outside=$(sed -n 's/^-- \(Installing\|Up-to-date\): //p' "$work/install.log" | grep -v "^$prefix/" || true)
[ -z "$outside" ] || fail "installed outside the prefix: $outside"

# ---- the tree ----------------------------------------------------------------------
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
major=${version%%.*}
for lib in shmbus shmbus-persist shmbus-bridge; do
  [ -f "$prefix/lib/lib$lib.a" ] || fail "no lib/lib$lib.a"
  [ -f "$prefix/lib/lib$lib.so.$version" ] || fail "no lib/lib$lib.so.$version"
  [ "$(readlink "$prefix/lib/lib$lib.so")" = "lib$lib.so.$major" ] || fail "lib$lib.so is no link to .so.$major"
  soname=$(readelf -d "$prefix/lib/lib$lib.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  [ "$soname" = "lib$lib.so.$major" ] || fail "lib$lib.so.$version has SONAME '$soname'"
done
# Public headers only: each one installed is one of shm/, persist/ or bridge/include, and
# shmbus/detail/ (internal) is not there.
[ -f "$prefix/include/shmbus/shmbus.h" ] || fail "no include/shmbus/shmbus.h"
[ ! -e "$prefix/include/shmbus/detail" ] || fail "include/shmbus/detail (internal) is installed"
n=0
while IFS= read -r h; do
  rel=${h#"$prefix/include/"}
  [ -f "$src/shm/include/$rel" ] || [ -f "$src/persist/include/$rel" ] || [ -f "$src/bridge/include/$rel" ] ||
    fail "installed header $rel is not a public header"
  n=$((n + 1))
done < <(find "$prefix/include" -type f)
expected=$(cd "$src" && find shm/include persist/include bridge/include -name '*.h' -not -path '*/detail/*' | wc -l)
[ "$n" -eq "$expected" ] || fail "$n headers installed, $expected public ones"
for f in bin/shmbus lib/cmake/shmbus/shmbusConfig.cmake lib/cmake/shmbus/shmbusConfigVersion.cmake \
         lib/pkgconfig/shmbus.pc lib/pkgconfig/shmbus-persist.pc lib/pkgconfig/shmbus-bridge.pc; do
  [ -f "$prefix/$f" ] || fail "no $f"
done
[ "$("$prefix/bin/shmbus" --version)" = "shmbus $version" ] || fail "bin/shmbus --version: not 'shmbus $version'"
if [ -n "$help2man" ]; then
  man=$prefix/share/man/man1/shmbus.1.gz
  [ -f "$man" ] || fail "no man page share/man/man1/shmbus.1.gz"
  page=$(zcat "$man") || fail "share/man/man1/shmbus.1.gz is not gzip"
  grep -q '^\.TH SHMBUS "1"' <<<"$page" || fail "share/man/man1/shmbus.1.gz is no man page"
  grep -q 'persist' <<<"$page" || fail "the man page lacks the commands"
fi
if [ "$have_python" = 1 ]; then
  ls "$prefix"/lib/python3/dist-packages/shmbus/_shmbus*.so >/dev/null || fail "no Python module"
  [ -f "$prefix/lib/python3/dist-packages/shmbus/__init__.py" ] || fail "no Python package"
fi

# Every installed header compiles with only the installed include directory.
for h in $(cd "$prefix/include" && find . -name '*.h' | sort); do echo "#include \"${h#./}\""; done >"$work/all.cc"
g++ -std=c++20 -fsyntax-only -I"$prefix/include" "$work/all.cc" || fail "the installed headers do not compile alone"

# ---- examples/ through find_package and pkg-config --------------------------------
flags=""
[ -n "$sanitize" ] && flags="-fsanitize=$sanitize -fno-omit-frame-pointer"
run_pair() {  # DIR STREAM: producer then consumer, 1000 records
  [ "$("$1/example_producer" "$ns" "$2" 1000)" = "published 1000" ] || fail "$1: producer"
  [ "$("$1/example_consumer" "$ns" "$2" 1000)" = "received 1000, last: record 999" ] || fail "$1: consumer"
  "$prefix/bin/shmbus" rm --namespace "$ns" "$2" >/dev/null || fail "$1: shmbus rm $2"
}
# Shared libraries (shmbus::shmbus): they must come from the prefix.
cmake -S "$src/examples" -B "$work/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >"$work/cmake.log" 2>&1 ||
  { cat "$work/cmake.log"; fail "examples: cmake (find_package) failed"; }
cmake --build "$work/cmake" >"$work/cmake-build.log" 2>&1 || { cat "$work/cmake-build.log"; fail "examples: build (find_package) failed"; }
grep -q "libshmbus.so.$major => $prefix/lib/" <<<"$(ldd "$work/cmake/example_consumer")" || fail "find_package: not linked with the prefix's libshmbus.so"
run_pair "$work/cmake" cmake
# Static libraries (COMPONENTS static: find_dependency of spdlog, libpmem2, librdkafka).
cmake -S "$src/examples" -B "$work/cmake_static" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DSHMBUS_EXAMPLES_STATIC=ON -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >"$work/cmake_static.log" 2>&1 ||
  { cat "$work/cmake_static.log"; fail "examples: cmake (find_package COMPONENTS static) failed"; }
cmake --build "$work/cmake_static" >"$work/cmake_static-build.log" 2>&1 || { cat "$work/cmake_static-build.log"; fail "examples: static build failed"; }
! grep -q libshmbus <<<"$(ldd "$work/cmake_static/example_consumer")" || fail "static: linked with a libshmbus.so"
run_pair "$work/cmake_static" cmake_static
# pkg-config (examples/Makefile), shared.
cp "$src"/examples/{Makefile,producer.cc,consumer.cc} "$work/" && mkdir -p "$work/pkgconfig" &&
  mv "$work"/{Makefile,producer.cc,consumer.cc} "$work/pkgconfig/"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" make -s -C "$work/pkgconfig" CXXFLAGS="-O2 $flags" LDFLAGS="$flags -Wl,-rpath,$prefix/lib" \
  >"$work/make.log" 2>&1 || { cat "$work/make.log"; fail "examples: make (pkg-config) failed"; }
run_pair "$work/pkgconfig" pkgconfig
# What a static link needs, as pkg-config --static says it.
static_libs=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --static --libs shmbus-bridge)
for l in -lshmbus-bridge -lshmbus-persist -lshmbus -lrdkafka -lpmem2 -lspdlog -lfmt -lrt -pthread; do
  [[ " $static_libs " == *" $l "* ]] || fail "pkg-config --static --libs shmbus-bridge lacks $l: $static_libs"
done
[ "$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --modversion shmbus)" = "$version" ] || fail "shmbus.pc version"

# ---- Python ------------------------------------------------------------------------
if [ "$have_python" = 1 ]; then
  got=$(cd "$work" && PYTHONPATH="$prefix/lib/python3/dist-packages" PYTHONDONTWRITEBYTECODE=1 \
    /usr/bin/python3 "$src/examples/hello.py" "$ns") || fail "examples/hello.py failed: $got"
  [ "$got" = "read one two three" ] || fail "examples/hello.py: $got"
fi
echo "install_prefix: ok ($n headers; find_package shared and static, pkg-config; python: $have_python)"
