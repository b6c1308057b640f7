#!/usr/bin/env bash
# Epoch time with and without `--serve` (and the live page open in headless
# Chromium), interleaved, N pairs: prints each run's median s/epoch.
#   docs/serve_overhead.sh [PAIRS] [EPOCHS] [extra train flags...]
set -euo pipefail
pairs=${1:-5}; epochs=${2:-4}; shift 2 || true
bin=target/release/simplenn
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
epoch_secs() { grep -o '[0-9.]* s  [0-9]* samples/s' | awk '{print $1}'; }
plain() { "$bin" --epochs "$epochs" --no-save --no-progress "$@" | epoch_secs | median; }
served() {
  local log; log=$(mktemp)
  "$bin" --epochs "$epochs" --no-save --no-progress --serve 0 "$@" >"$log" &
  local pid=$!
  until grep -q 'http://' "$log"; do sleep 0.05; done
  local url; url=$(grep -o 'http://[0-9.:]*/' "$log" | head -1)
  local profile; profile=$(mktemp -d)
  chromium --headless=new --no-sandbox --disable-gpu --user-data-dir="$profile" \
    --remote-debugging-port=0 "$url" >/dev/null 2>&1 &
  local chrome=$!
  until grep -q 'training done' "$log"; do sleep 0.1; done
  kill -INT "$pid"; wait "$pid" || true
  kill "$chrome"; wait "$chrome" 2>/dev/null || true
  rm -rf "$profile"
  epoch_secs <"$log" | median
  rm -f "$log"
}
for i in $(seq "$pairs"); do
  echo "pair $i: without $(plain "$@") s/epoch, with page $(served "$@") s/epoch"
done
