#!/usr/bin/env bash
# tools/man_commands.sh SHMBUS OUT: help2man's --include file for shmbus.1 (cmake/Install.cmake):
# a COMMANDS section with each subcommand's `shmbus COMMAND --help`, from the command
# just built, so that the man page covers the subcommands and never goes stale.
set -euo pipefail
cli=$1 out=$2
# Help text as roff: backslashes escaped, a line starting with . or ' is not a request.
roff() { sed -e 's/\\/\\e/g' -e "s/^[.']/\\\\\\&&/"; }
{
  echo "[COMMANDS]"
  echo "Each command's options, as \`shmbus COMMAND --help\` prints them."
  # The listing names nested commands in full ("bridge out"): the name ends at two spaces.
  "$cli" --help |
    awk '/^Subcommands:/ { on = 1; next } on && /^$/ { exit } on && /^  [a-z]/ { split(substr($0, 3), f, /  +/); print f[1] }' |
    while read -r cmd; do
      # A command that hands --help to another program (bench) is left out when that fails.
      # shellcheck disable=SC2086  # "bridge out" is two words
      help=$("$cli" $cmd --help 2>/dev/null) || continue
      echo ".SS \"shmbus $cmd\""
      echo ".nf"
      printf '%s\n' "${help//"$cli"/shmbus}" | roff
      echo ".fi"
    done
} >"$out.tmp"
mv "$out.tmp" "$out"
