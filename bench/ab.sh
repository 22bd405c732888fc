#!/usr/bin/env bash
# ab.sh: alternating runs of two shmbus-bench binaries (an A/B of a change), so that the
# VM's placement changes hit both builds alike.  Runs A, B, A, B, ... ROUNDS times with
# the same options, then prints, for every row and column both printed, the medians of
# each round and the median of those medians per build.
#
#   bench/ab.sh OLD_BENCH NEW_BENCH ROUNDS [shmbus-bench options...]
#   e.g. bench/ab.sh /tmp/bench-old build/bench/shmbus-bench 4 --reps 3 \
#          --only "single-producer stream (publish)"
#
# Build the old binary first, e.g. `git stash; ninja -C build bench/shmbus-bench; cp
# build/bench/shmbus-bench /tmp/bench-old; git stash pop; ninja -C build`.
#
# AB_BELOW_NS=N: a run starts only when a probe (the binary's own cache-line ping-pong)
# finds the cache line under N ns, and is run again unless the run's first and last
# probes did too, so that every kept run saw one placement (e.g. 110 on a VM whose fast
# placement is 60-85 ns).  AB_WAIT_S (default 7200): the most seconds spent waiting for
# it in all; then ab.sh fails.
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,18p' "$0" >&2
  exit 2
fi
below=${AB_BELOW_NS:-} wait_s=${AB_WAIT_S:-7200}
for v in ${below:+"$below"} "$wait_s"; do
  if [[ ! $v =~ ^[0-9]+$ ]] || ((10#$v == 0)); then
    echo "ab.sh: AB_BELOW_NS and AB_WAIT_S must be positive numbers (got '$v')" >&2
    exit 2
  fi
done
waited_until=$(( $(date +%s) + 10#$wait_s ))
old=$1 new=$2 rounds=$3
shift 3
for b in "$old" "$new"; do
  [ -x "$b" ] || { echo "ab.sh: $b is not an executable" >&2; exit 2; }
done
if [[ ! $rounds =~ ^[0-9]+$ ]] || ((10#$rounds == 0)); then
  echo "ab.sh: ROUNDS must be a positive number" >&2
  exit 2
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The p50 in ns of a table row's first column ("| raw cache line ping-pong (start) | 85 ns |",
# or 1.20 us).
probe_of() {
  awk -F'|' -v row="$2" 'index($2, row) {
    split($3, w, " "); f = w[2] == "us" ? 1e3 : w[2] == "ms" ? 1e6 : w[2] == "s" ? 1e9 : 1
    printf "%d\n", w[1] * f; exit }' "$1"
}
give_up_at_deadline() {  # $1: what did not happen in time
  if (($(date +%s) >= waited_until)); then
    echo "ab.sh: $1 within AB_WAIT_S=$wait_s s" >&2
    exit 1
  fi
}
for_placement() {  # wait until a probe of $1 finds the cache line under $below ns
  while :; do
    "$1" --reps 1 --only none > "$out/probe" 2>&1 || true
    p=$(probe_of "$out/probe" "raw cache line ping-pong (start)")
    [ -n "$p" ] && ((p < 10#$below)) && return 0
    give_up_at_deadline "no probe found the cache line under $below ns"
    sleep 3
  done
}
for i in $(seq 1 "$rounds"); do
  for side in A B; do
    bin=$old
    [ "$side" = B ] && bin=$new
    while :; do
      [ -n "$below" ] && for_placement "$bin"
      echo "round $i, $side: $bin" >&2
      "$bin" "$@" > "$out/$side.$i" 2>&1 || { echo "ab.sh: $bin failed (round $i):" >&2; tail -5 "$out/$side.$i" >&2; exit 1; }
      [ -z "$below" ] && break
      s=$(probe_of "$out/$side.$i" "raw cache line ping-pong (start)")
      e=$(probe_of "$out/$side.$i" "raw cache line ping-pong (end)")
      [ -n "$s" ] && [ -n "$e" ] && ((s < 10#$below && e < 10#$below)) && break
      echo "ab.sh: round $i, $side run again: its probes found ${s:-?} / ${e:-?} ns" >&2
      give_up_at_deadline "no run kept its probes under $below ns"
    done
  done
done
# The main table: "| row | col | col | ..." with a header line naming the columns.  Each
# cell's first number (the median of the run's repetitions) is kept, with its unit.
awk -F'|' -v rounds="$rounds" '
  function trim(s) { gsub(/^ +| +$/, "", s); return s }
  FNR == 1 { n = split(FILENAME, parts, "/"); split(parts[n], sr, "."); side = sr[1]; cols = 0 }
  /^\| transport \|/ { cols = NF; for (c = 3; c < NF; ++c) name[c] = trim($c); next }
  /^$/ { cols = 0 }  # the main table ends at its first empty line
  cols && /^\| / && !/^\|---/ {
    row = trim($2)
    for (c = 3; c < NF && c < cols; ++c) {
      cell = trim($c)
      if (cell == "-" || cell == "") continue
      split(cell, w, " ")
      # To one unit per column (a rate may print as 998.1 k/s in one run, 1.01 M/s in
      # the next): records/s, or ns.
      f = 1; u = ""
      if (w[2] == "k/s") { f = 1e3; u = "/s" } else if (w[2] == "M/s") { f = 1e6; u = "/s" }
      else if (w[2] == "G/s") { f = 1e9; u = "/s" } else if (w[2] == "/s") { u = "/s" }
      else if (w[2] == "ns") { u = "ns" } else if (w[2] == "us") { f = 1e3; u = "ns" }
      else if (w[2] == "ms") { f = 1e6; u = "ns" } else if (w[2] == "s") { f = 1e9; u = "ns" }
      key = row " | " name[c]
      if (!(key in seen)) { seen[key] = 1; order[++nkeys] = key }
      vals[key, side] = vals[key, side] (vals[key, side] == "" ? "" : " ") sprintf("%.6g", w[1] * f)
      unit[key] = u
    }
  }
  function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; ++i) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; --j) a[j + 1] = a[j]; a[j + 1] = t }
    if (n == 0) return "-"
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  # Rates in M/s, times in ns (us from 10 us, ms from 1 ms on), the rest as printed.
  function fmt(v, u) {
    if (u == "/s") return sprintf("%.3g M/s", v / 1e6)
    if (u == "ns") return v >= 1e6 ? sprintf("%.3g ms", v / 1e6) : v >= 1e4 ? sprintf("%.3g us", v / 1e3) : sprintf("%.0f ns", v)
    return sprintf("%.3g", v)
  }
  function fmt_list(list, u,   a, n, i, r) {
    n = split(list, a, " ")
    for (i = 1; i <= n; ++i) { r = r (i > 1 ? ", " : "") fmt(a[i], u) }
    return r
  }
  END {
    printf "%d rounds each, A = old, B = new; per round the run'\''s median; then the median of the rounds\n\n", rounds
    printf "| row | column | A rounds | B rounds | A | B | B / A |\n|---|---|---|---|---|---|---|\n"
    for (k = 1; k <= nkeys; ++k) {
      key = order[k]
      if (vals[key, "A"] == "" || vals[key, "B"] == "") continue
      split(key, kp, " \\| ")
      ma = median(vals[key, "A"]); mb = median(vals[key, "B"])
      printf "| %s | %s | %s | %s | %s | %s | %s |\n", kp[1], kp[2], fmt_list(vals[key, "A"], unit[key]),
             fmt_list(vals[key, "B"], unit[key]), fmt(ma, unit[key]), fmt(mb, unit[key]),
             (ma + 0 > 0) ? sprintf("%.2fx", mb / ma) : "-"
    }
  }' "$out"/A.* "$out"/B.*
