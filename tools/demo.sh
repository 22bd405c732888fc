#!/usr/bin/env bash
# tools/demo.sh [BUILD_DIR]: a record's whole life on one host, with the embedded
# defaults (no daemon): produce -> store -> read -> delete, in separate processes.
set -euo pipefail
B=${1:-build}
S="$B/tools/shmbus"
[ -x "$S" ] || { echo "build first: $S is missing" >&2; exit 1; }
export SHMBUS_NAMESPACE="demo-$$"
export SHMBUS_DATA_DIR="$(mktemp -d /tmp/shmbus-demo.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$S" rm ticks --force --data >/dev/null 2>&1 || true
  rm -rf "$SHMBUS_DATA_DIR"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. Create a stream: a 1 MiB ring in /dev/shm (namespace $SHMBUS_NAMESPACE)"
run "$S" create ticks --capacity 1M --max-record 4K --consumer-timeout 1s

step "2. A persister spills the ring to segment files (1 MiB segments, kept for 4 s)"
printf '$ %s\n' "$S persist ticks --segment-size 1M --retention-age 4s &"
"$S" persist ticks --segment-size 1M --retention-age 4s 2>"$SHMBUS_DATA_DIR/persist.log" &
pids+=($!)
sleep 0.3

step "3. Two producer processes publish 64-byte records at 40k records/s each; a tailing reader follows live"
for i in 1 2; do
  "$S" pub ticks --count 200000 --size 64 --rate 40000 2>/dev/null &
  pids+=($!)
done
"$S" tail ticks --from latest -f --format hex >"$SHMBUS_DATA_DIR/live.txt" &
pids+=($!)
sleep 0.5

step "4. A durable consumer (group 'audit') reads 3 records and exits; restarted, it continues"
echo "   exactly after the last record it printed, then keeps following"
run "$S" tail ticks --group audit --count 3 --format json | cut -c1-100
run "$S" tail ticks --group audit --count 3 --format json | cut -c1-100
"$S" tail ticks --group audit -f --format hex >/dev/null &
pids+=($!)

step "5. Live stat: lambda (published), mu (per consumer), the store, rho and A = lambda x T"
run "$S" stat ticks --interval 1

step "6. Records outlive the ring: replay the last 2 s from the store and land on the live stream"
# (Not from the oldest record: retention deletes it about now, and a replay that starts
# there is told of the deleted range, which a slow machine would show.)
sleep 1
printf '$ %s\n' "$S tail ticks --from @-2s --count 150000 --format hex"
"$S" tail ticks --from @-2s --count 150000 --format hex >"$SHMBUS_DATA_DIR/replay.txt"
first=$(head -1 "$SHMBUS_DATA_DIR/replay.txt" | cut -d' ' -f1)
last=$(tail -1 "$SHMBUS_DATA_DIR/replay.txt" | cut -d' ' -f1)
oldest_ring=$("$S" stat ticks --interval 0 --json | sed 's/.*"oldest_seq":\([0-9]*\).*/\1/')
echo "replayed $(wc -l <"$SHMBUS_DATA_DIR/replay.txt") records: seq $first .. $last, contiguous;" \
     "the ring itself now starts at seq $oldest_ring"
awk -v f="$first" 'NR>1 && $1 != prev+1 {print "GAP after " prev; exit 1} {prev=$1}' "$SHMBUS_DATA_DIR/replay.txt"

step "7. Retention deletes segments older than 4 s while producers run: rho, and A = lambda x T"
run "$S" stat ticks --interval 1 | grep -E "^(sequences|persisted|durable|store|lambda|rho|A =|ring)"
wait "${pids[1]}" "${pids[2]}"

step "8. Delete explicitly below a sequence, then remove the stream and its store"
cut=$(( last / 2 ))
run "$S" delete ticks --before "$cut"
"$S" tail ticks --from 0 --count 1 --format hex 2>&1 | cut -c1-80
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait "${pids[@]}" 2>/dev/null || true
pids=()
run "$S" ls
run "$S" rm ticks --data
echo
echo "demo done: produce -> store -> read -> delete"
