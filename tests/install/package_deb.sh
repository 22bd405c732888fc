#!/usr/bin/env bash
# tests/install/package_deb.sh BUILD VERSION HAVE_PYTHON HELP2MAN
# Builds the .deb with cpack, checks its control fields and contents, unpacks it into a
# throwaway root and runs what it holds from there.
set -euo pipefail
build=$1 version=$2 have_python=$3 help2man=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/shmbus-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "package_deb: $*" >&2; exit 1; }

arch=$(dpkg --print-architecture)
deb=$work/shmbus_${version}_$arch.deb
(cd "$build" && cpack -G DEB -B "$work" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack -G DEB failed"; }
[ -f "$deb" ] || { ls "$work"; fail "no $(basename "$deb")"; }

info=$(dpkg-deb -I "$deb")
field() { sed -n "s/^ $1: //p" <<<"$info"; }
[ "$(field Package)" = shmbus ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version)"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
[ -n "$(field Section)" ] || fail "no Section"
depends=$(field Depends)
for d in libpmem2 librdkafka libspdlog libstdc++6 libc6; do
  [[ "$depends" == *"$d"* ]] || fail "Depends lacks $d: $depends"
done
if [ "$have_python" = 1 ]; then
  py=$(/usr/bin/python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  [[ "$depends" == *"python3 (>= $py)"* ]] || fail "Depends lacks python3 (>= $py): $depends"
fi

contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
need=(./usr/bin/shmbus ./usr/include/shmbus/shmbus.h ./usr/include/shmbus/persist.h ./usr/include/shmbus/kafka.h
  "./usr/lib/libshmbus.so.$version" ./usr/lib/libshmbus.a "./usr/lib/libshmbus-persist.so.$version"
  "./usr/lib/libshmbus-bridge.so.$version" ./usr/lib/cmake/shmbus/shmbusConfig.cmake
  ./usr/lib/cmake/shmbus/shmbusTargets.cmake ./usr/lib/pkgconfig/shmbus.pc ./usr/lib/pkgconfig/shmbus-persist.pc)
[ "$have_python" = 1 ] && need+=(./usr/lib/python3/dist-packages/shmbus/__init__.py)
need+=(./usr/share/doc/shmbus/copyright)
[ -n "$help2man" ] && need+=(./usr/share/man/man1/shmbus.1.gz)
for f in "${need[@]}"; do
  grep -qx -- "$f" <<<"$contents" || fail "the package lacks $f"
done
if [ "$have_python" = 1 ]; then
  grep -q '^./usr/lib/python3/dist-packages/shmbus/_shmbus.*\.so$' <<<"$contents" || fail "the package lacks the Python module"
fi
! grep -q '/detail/' <<<"$contents" || fail "the package holds internal headers"

# Unpacked into a throwaway root: the command and the module run from there.
root=$work/root
dpkg -x "$deb" "$root"
[ "$(LD_LIBRARY_PATH="$root/usr/lib" "$root/usr/bin/shmbus" --version)" = "shmbus $version" ] || fail "shmbus --version from the package"
grep -q '^Copyright: ' "$root/usr/share/doc/shmbus/copyright" || fail "usr/share/doc/shmbus/copyright has no Copyright field"
grep -q '^License: ' "$root/usr/share/doc/shmbus/copyright" || fail "usr/share/doc/shmbus/copyright has no License field"
if [ -n "$help2man" ]; then
  # Gzipped, and with a section per subcommand (tools/man_commands.sh): each one's options.
  page=$(zcat "$root/usr/share/man/man1/shmbus.1.gz") || fail "usr/share/man/man1/shmbus.1.gz is not gzip"
  grep -q '^\.TH SHMBUS "1"' <<<"$page" || fail "shmbus.1.gz is no man page"
  for cmd in create pub tail stat persist bridge; do
    grep -q "^\.SS \"shmbus $cmd\"" <<<"$page" || fail "the man page has no section for shmbus $cmd"
  done
  grep -q -- '--consumer-retention' <<<"$page" || fail "the man page lacks the subcommands' options (create --consumer-retention)"
  if command -v man >/dev/null; then
    MANWIDTH=80 man -l "$root/usr/share/man/man1/shmbus.1.gz" 2>&1 >/dev/null | grep . && fail "man warns about shmbus.1.gz"
  fi
fi
if [ "$have_python" = 1 ]; then
  got=$(cd "$work" && PYTHONPATH="$root/usr/lib/python3/dist-packages" PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -c \
    'import shmbus, os; print(shmbus.__version__, os.path.dirname(shmbus.__file__))')
  [ "$got" = "$version $root/usr/lib/python3/dist-packages/shmbus" ] || fail "import shmbus from the package: $got"
fi
echo "package_deb: ok: $(basename "$deb"), Depends: $depends"
