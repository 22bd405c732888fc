#!/usr/bin/env bash
# shmbus-bench's options: bad values exit 2, with an error (its first line) from
# shmbus-bench, before anything runs.  (ctest bench_args)
set -euo pipefail
bench=$1
for bad in "--reps 0" "--reps x" "--placement-tolerance 1" "--placement-tolerance 0.5" \
           "--placement-tolerance -1" "--placement-tolerance 101" "--placement-tolerance x" \
           "--placement-tolerance" "--placement-wait -1" "--placement-wait 86401" \
           "--placement-wait x" "--placement-wait" "--no-such-option"; do
  set +e
  # shellcheck disable=SC2086
  err=$("$bench" $bad 2>&1 >/dev/null)
  rc=$?
  set -e
  if [ "$rc" != 2 ]; then echo "args_smoke: 'shmbus-bench $bad' exited $rc, not 2"; exit 1; fi
  if [[ $(head -1 <<<"$err") != "shmbus-bench: "* ]]; then
    echo "args_smoke: 'shmbus-bench $bad' said: $err"; exit 1
  fi
done
echo "args_smoke: ok"
