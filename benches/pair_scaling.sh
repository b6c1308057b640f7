#!/usr/bin/env bash
# Is a 2-thread epoch's shortfall the machine's or simplenn's? On a machine
# with at least 2 CPUs, alternate ROUNDS (default 4) rounds of
#   a. `epoch_time 1 3 1024,1024` alone, pinned to CPU 0;
#   b. `epoch_time 2 3 1024,1024` (one run, two threads), pinned to CPUs 0 and 1;
#   c. two `epoch_time 1 3 1024,1024` at once, pinned to CPUs 0 and 1;
# each figure the median seconds of 3 epochs of 784-1024-1024-10 (batch
# 128) after a warm-up one. If the two runs of (c) each keep (a)'s time,
# the machine gives two threads twice one's throughput, and what (b) falls
# short of 2 × is lost in simplenn's split of each step between its threads.
#
#   benches/pair_scaling.sh              # builds epoch_time first
#   BIN=DIR ROUNDS=6 benches/pair_scaling.sh
#
# Not run by CI (about a minute a round); timings are a report, never a test.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-4}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --example epoch_time
  # Where cargo put it ($CARGO_TARGET_DIR or build.target-dir may move it).
  BIN=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/examples
fi
e="$BIN/epoch_time"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
for r in $(seq 1 "$rounds"); do
  taskset -c 0 "$e" 1 3 1024,1024 2>/dev/null | tail -1 >> "$tmp/alone"
  taskset -c 0,1 "$e" 2 3 1024,1024 2>/dev/null | tail -1 >> "$tmp/two"
  taskset -c 0 "$e" 1 3 1024,1024 2>/dev/null | tail -1 > "$tmp/p0" &
  taskset -c 1 "$e" 1 3 1024,1024 2>/dev/null | tail -1 > "$tmp/p1"
  wait
  cat "$tmp/p0" "$tmp/p1" >> "$tmp/pair"
  echo "round $r: alone $(tail -1 "$tmp/alone") s, 2 threads $(tail -1 "$tmp/two") s, pair $(cat "$tmp/p0") s and $(cat "$tmp/p1") s"
done
a=$(median < "$tmp/alone"); t=$(median < "$tmp/two"); p=$(median < "$tmp/pair")
echo "medians: alone $a s, 2 threads $t s, each of a pair $p s"
awk -v a="$a" -v t="$t" -v p="$p" 'BEGIN {
  printf "2 threads over 1: %.2fx; a pair'\''s throughput over one run: %.2fx\n", a / t, 2 * a / p }'
