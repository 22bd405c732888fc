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
  "$S" rm events --force >/dev/null 2>&1 || true
  "$S" rm inbox --force >/dev/null 2>&1 || true
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
# The first segment turns 4 s old about now: wait (up to 5 s, on a loaded machine) until
# retention has deleted it, so that the stat below shows rho.
for _ in $(seq 50); do
  "$S" stat ticks --interval 0 --json | grep -q '"deleted_records":[1-9]' && break
  sleep 0.1
done
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

step "9. Beyond the host: Kafka (the embedded mock cluster; --brokers names a real one)"
printf '$ %s\n' "$S kafka-mock --topic test_topic &"
"$S" kafka-mock --topic test_topic >"$SHMBUS_DATA_DIR/kafka.txt" 2>"$SHMBUS_DATA_DIR/kafka.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$SHMBUS_DATA_DIR/kafka.txt" ] && break; sleep 0.1; done
BROKERS=$(head -1 "$SHMBUS_DATA_DIR/kafka.txt")
run "$S" create events --capacity 64K
printf '$ %s\n' "printf 'hello\\nfrom\\nshmbus\\n' | $S pub events"
printf 'hello\nfrom\nshmbus\n' | "$S" pub events
run "$S" bridge out events --brokers "$BROKERS" --topic test_topic --exit-at-end
if /usr/bin/python3 -c 'import kafka' 2>/dev/null; then
  echo "# a kafka-python consumer in group test_group prints what the bridge carried out:"
  /usr/bin/python3 - "$BROKERS" <<'PY'
import sys
from kafka import KafkaConsumer
consumer = KafkaConsumer('test_topic', bootstrap_servers=sys.argv[1], group_id='test_group',
                         auto_offset_reset='earliest', consumer_timeout_ms=3000)
for message in consumer:
    print(message.offset, message.value, dict(message.headers)['shmbus.seq'])
consumer.close()
PY
  echo "# a kafka-python producer sends b'Hello, Kafka!' to test_topic:"
  /usr/bin/python3 - "$BROKERS" <<'PY'
import sys
from kafka import KafkaProducer
producer = KafkaProducer(bootstrap_servers=sys.argv[1])
producer.send('test_topic', b'Hello, Kafka!')
producer.flush()
producer.close()
PY
elif command -v kcat >/dev/null; then
  echo "# (python3-kafka is not installed: kcat reads and sends instead)"
  kcat -C -b "$BROKERS" -t test_topic -e -q
  printf 'Hello, Kafka!' | kcat -P -b "$BROKERS" -t test_topic
else
  echo "# (neither python3-kafka nor kcat is installed: shmbus itself plays the other side)"
  "$S" create hello --capacity 64K
  printf 'Hello, Kafka!\n' | "$S" pub hello
  "$S" bridge out hello --brokers "$BROKERS" --topic test_topic --exit-at-end
  "$S" rm hello --force
fi
run "$S" create inbox --capacity 64K
run "$S" bridge in test_topic --brokers "$BROKERS" --stream inbox --exit-at-end
run "$S" tail inbox

echo
echo "demo done: produce -> store -> read -> delete; and beyond the host through Kafka"
