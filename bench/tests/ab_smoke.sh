#!/usr/bin/env bash
# bench/ab.sh against one shmbus-bench binary run twice: the table lists the row's 64 B
# rate for both builds; bad arguments exit 2.  (ctest bench_ab_smoke)
set -euo pipefail
ab=$1 bench=$2
out=$("$ab" "$bench" "$bench" 1 --quick --reps 1 --only "single-producer stream (publish)" 2>/dev/null)
row='^| shmbus durable, single-producer stream (publish) | 64 B rec/s | [0-9.]* M/s | [0-9.]* M/s | [0-9.]* M/s | [0-9.]* M/s | [0-9.]*x |$'
if ! grep -q "$row" <<<"$out"; then
  echo "ab_smoke: no 64 B row in:"; echo "$out"; exit 1
fi
for bad in "$bench /nonexistent 1" "$bench $bench 0" "$bench $bench 00" "$bench $bench x" "$bench"; do
  set +e
  # shellcheck disable=SC2086
  "$ab" $bad > /dev/null 2>&1
  rc=$?
  set -e
  if [ "$rc" != 2 ]; then echo "ab_smoke: 'ab.sh $bad' exited $rc, not 2"; exit 1; fi
done
# AB_BELOW_NS: a bound every placement meets keeps the run; one none meets fails within
# AB_WAIT_S, saying why; bad values exit 2.
out=$(AB_BELOW_NS=100000000 "$ab" "$bench" "$bench" 1 --quick --reps 1 --only "single-producer stream (publish)" 2>/dev/null)
if ! grep -q "$row" <<<"$out"; then
  echo "ab_smoke: AB_BELOW_NS=100000000: no 64 B row in:"; echo "$out"; exit 1
fi
set +e
err=$(AB_BELOW_NS=1 AB_WAIT_S=1 timeout 60 "$ab" "$bench" "$bench" 1 --quick --reps 1 --only "single-producer stream (publish)" 2>&1 >/dev/null)
rc=$?
set -e
if [ "$rc" != 1 ] || ! grep -q "no probe found the cache line under 1 ns within AB_WAIT_S=1 s" <<<"$err"; then
  echo "ab_smoke: AB_BELOW_NS=1 AB_WAIT_S=1 exited $rc, saying: $err"; exit 1
fi
for bad in "AB_BELOW_NS=x" "AB_BELOW_NS=0" "AB_WAIT_S=-1" "AB_WAIT_S=0"; do
  set +e
  env "$bad" "$ab" "$bench" "$bench" 1 > /dev/null 2>&1
  rc=$?
  set -e
  if [ "$rc" != 2 ]; then echo "ab_smoke: '$bad ab.sh' exited $rc, not 2"; exit 1; fi
done
echo "ab_smoke: ok"
