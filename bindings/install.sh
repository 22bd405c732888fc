#!/usr/bin/env bash
# bindings/install.sh: build the shmbus Python module and install it for Debian's
# /usr/bin/python3 (offline: no pip, no network).  Afterwards `import shmbus` works from
# any directory.
#
#   bindings/install.sh            # installs into the interpreter's platlib, for
#                                  # /usr/bin/python3: /usr/local/lib/python3.11/dist-packages
# Environment:
#   PYTHON=/path/to/python3        interpreter to build for (default /usr/bin/python3)
#   BUILD_DIR=/path                build tree (default /tmp/shmbus-python-build)
#   SITE_DIR=/path                 install elsewhere (then put it on PYTHONPATH)
#   JOBS=N                         parallel compile jobs (default 2)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-/usr/bin/python3}
build=${BUILD_DIR:-/tmp/shmbus-python-build}
jobs=${JOBS:-2}

# The interpreter's platlib by default (the build's own default, PREFIX/lib/python3/
# dist-packages, is the .deb's layout; /usr/local/lib/python3 is on no path).
site=${SITE_DIR:-$("$py" -c 'import sysconfig; print(sysconfig.get_path("platlib"))')}
extra=("-DSHMBUS_PYTHON_DIR=$site")
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$py" \
  -DSHMBUS_BUILD_TESTS=OFF -DSHMBUS_BUILD_BENCH=OFF "${extra[@]}" >/dev/null
cmake --build "$build" --target _shmbus -j "$jobs"
cmake --install "$build" --component python
cd /
"$py" -c 'import shmbus, os; print("installed shmbus", shmbus.__version__, "in", os.path.dirname(shmbus.__file__))'
