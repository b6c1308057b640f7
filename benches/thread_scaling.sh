#!/usr/bin/env bash
# Thread scaling on a machine with more cores than the project's 2: at each
# --threads T (default 1 2 4 8 16, those above the machine's CPU count
# dropped), run
#   1. the default training run, `simplenn --threads T --save F` (784-256-10,
#      20 epochs): its "trained in" seconds, its test accuracy, the sha256 of F;
#   2. `epoch_time T 3 1024,1024` and PyTorch's `torch_mlp.py --threads T
#      --hidden 1024,1024 --epochs 4` (when `import torch` works): median
#      seconds an epoch of 784-1024-1024-10 over 3 epochs after a warm-up one
#      on both sides, one right after the other so both see the same state of
#      the machine, simplenn first at odd positions in the list of T and
#      PyTorch first at even ones;
#   3. the same for 784-256-10 (`epoch_time T 5`, torch with `--epochs 6`);
# then the `peak` bench at every T (SIMPLENN_BENCH_THREADS), and one epoch
# of 784-1024-1024-10 at the lowest and highest T, whose files must be
# identical. Prints a table last (with each deep epoch's GFLOP/s as a share
# of the peak measured at its T); everything else goes to OUTDIR.
#
#   benches/thread_scaling.sh [OUTDIR]              # builds what it runs; OUTDIR
#                                                   # (relative to the repository
#                                                   # root) defaults to target/thread-scaling
#   BIN=DIR benches/thread_scaling.sh [OUTDIR]      # DIR holds simplenn, epoch_time, peak
#   THREADS="1 2" PYTHON=python3 benches/thread_scaling.sh
#
# Not run by CI: a run on 16 threads takes a few minutes. Timings are a
# report, never a test.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/thread-scaling}
mkdir -p "$out"
python=${PYTHON:-python3}
cpus=$(nproc)
# A container's CPU quota (cgroup v2's cpu.max: "QUOTA PERIOD", or "max")
# caps the threads that run at once below what nproc counts; Rust's
# available_parallelism, which sizes simplenn's pool, counts it too.
if read -r quota period 2>/dev/null </sys/fs/cgroup/cpu.max && [ "$quota" != max ] && [ "${period:-0}" -gt 0 ]; then
  # Rounded down, at least 1, as available_parallelism rounds it.
  capped=$((quota / period))
  if [ "$capped" -lt 1 ]; then capped=1; fi
  if [ "$capped" -lt "$cpus" ]; then cpus=$capped; fi
fi

list=""
for t in ${THREADS:-1 2 4 8 16}; do
  case $t in
    *[!0-9]* | 0*) echo "thread_scaling.sh: THREADS has $t; give whole numbers from 1, e.g. THREADS=\"1 2 4\"" >&2; exit 2 ;;
  esac
  if [ "$t" -le "$cpus" ]; then list="$list $t"; fi
done
if [ -z "$list" ]; then
  echo "thread_scaling.sh: none of THREADS (${THREADS:-1 2 4 8 16}) is at most this machine's $cpus CPUs" >&2
  exit 2
fi

if [ -z "${BIN:-}" ]; then
  cargo build --release --bin simplenn --example epoch_time
  peak=$(cargo bench --no-run --bench peak 2>&1 | sed -n 's/.*Executable benches\/peak.rs (\(.*\))/\1/p')
  BIN=$out/bin
  mkdir -p "$BIN"
  # Where cargo put them ($CARGO_TARGET_DIR or build.target-dir may move them).
  target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  cp "$target"/release/simplenn "$target"/release/examples/epoch_time "$BIN"/
  cp "$peak" "$BIN"/peak
fi

# A reused OUTDIR must not mix an earlier run's files into this one's checks.
rm -f "$out"/default_*t.* "$out"/deep_*t.* "$out"/torch_*.log
{
  date -u
  lscpu
  echo "nproc $(nproc), CPUs usable (cgroup quota counted) $cpus"
} >"$out/machine.txt"
grep -E "^(Model name|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|Socket\(s\)|NUMA node\(s\))" "$out/machine.txt" || true
if grep -qw avx512f /proc/cpuinfo; then echo "AVX-512F: yes"; else echo "AVX-512F: no"; fi

torch=0
if "$python" -c "import torch" 2>/dev/null; then torch=1; fi

# $1: network name, $2: threads, $3: torch --hidden, $4: torch log, $5: epochs
# after the warm-up one. Prints PyTorch's median s/epoch, or "-" without torch.
torch_epoch() {
  if [ "$torch" = 0 ]; then echo -; return; fi
  if ! "$python" benches/peers/torch_mlp.py --threads "$2" --hidden "$3" --epochs $(($5 + 1)) >"$4" 2>&1; then
    echo "PyTorch failed on $1 at $2 threads: see $4" >&2
    echo -
    return
  fi
  sed -n 's/^RESULT //p' "$4" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["median_s_per_epoch"])'
}

# $1: network name, $2: hidden widths, $3: timed epochs. Sets sn and tc to
# simplenn's and PyTorch's median s/epoch at $t threads, simplenn first at
# odd positions $pos in the list of T and PyTorch first at even ones.
pair() {
  if [ $((pos % 2)) = 1 ]; then
    sn=$("$BIN"/epoch_time "$t" "$3" "$2")
    tc=$(torch_epoch "$1" "$t" "$2" "$out/torch_$1_${t}t.log" "$3")
  else
    tc=$(torch_epoch "$1" "$t" "$2" "$out/torch_$1_${t}t.log" "$3")
    sn=$("$BIN"/epoch_time "$t" "$3" "$2")
  fi
}

printf "threads\tdefault_run_s\tdefault_test\tdefault_sha256\tdeep_s\tdeep_torch_s\tdefault_s\tdefault_torch_s\n" >"$out/scaling.tsv"
pos=0
for t in $list; do
  pos=$((pos + 1))
  log=$out/default_${t}t.log
  "$BIN"/simplenn --threads "$t" --save "$out/default_${t}t.safetensors" >"$log" 2>&1
  run_s=$(sed -n 's/.*trained in \([0-9.]*\) s.*/\1/p' "$log")
  acc=$(sed -n 's/^test accuracy \([<>0-9.]*%\).*/\1/p' "$log")
  sha=$(sha256sum "$out/default_${t}t.safetensors" | cut -c1-16)
  pair deep 1024,1024 3
  deep=$sn deep_torch=$tc
  pair default 256 5
  small=$sn small_torch=$tc
  printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$t" "$run_s" "$acc" "$sha" "$deep" "$deep_torch" "$small" "$small_torch" | tee -a "$out/scaling.tsv"
done

# The peak bench writes its ISA beside criterion's results, under CARGO_TARGET_DIR.
rm -rf "$out/criterion-target"
CARGO_TARGET_DIR=$out/criterion-target SIMPLENN_BENCH_THREADS=$(echo $list | tr ' ' ,) \
  "$BIN"/peak --bench >"$out/peak.log" 2>&1 || echo "peak bench failed: see $out/peak.log"
grep -E "^peak/|thrpt|FMA chains" "$out/peak.log" || true

lo=$(echo $list | awk '{print $1}')
hi=$(echo $list | awk '{print $NF}')
for t in $lo $hi; do
  "$BIN"/simplenn --threads "$t" --hidden 1024,1024 --epochs 1 --save "$out/deep_${t}t.safetensors" >"$out/deep_${t}t.log" 2>&1
done
sha256sum "$out"/deep_*t.safetensors "$out"/default_*t.safetensors | tee "$out/sha256.txt"
distinct_deep=$(sha256sum "$out"/deep_*t.safetensors | cut -d' ' -f1 | sort -u | wc -l)
distinct_default=$(sha256sum "$out"/default_*t.safetensors | cut -d' ' -f1 | sort -u | wc -l)
echo "distinct files: deep $distinct_deep, default $distinct_default (1 each means bit-identical across threads)"

echo
# The summary: epochs, speed-ups over 1 thread, PyTorch ratios, and the deep
# epoch's GFLOP/s against the peak criterion measured at the same T (the
# FLOP of Dims::train_flop_per_row: per layer the forward product and the
# weight gradient, and the input gradient for all layers but the first).
"$python" - "$out" <<'PY' | tee "$out/summary.txt" || cat "$out/scaling.tsv"
import csv, json, os, sys

out = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(out, "scaling.tsv")), delimiter="\t"))


def flop_per_epoch(widths, images=55_000):
    layers = list(zip(widths, widths[1:]))
    return images * sum(2 * (2 + (l > 0)) * i * o for l, (i, o) in enumerate(layers))


def peak(t):
    d = os.path.join(out, "criterion-target", "criterion", "peak", "fma", f"{t}t", "new")
    try:
        median_ns = json.load(open(os.path.join(d, "estimates.json")))["median"]["point_estimate"]
        flop = json.load(open(os.path.join(d, "benchmark.json")))["throughput"]["Elements"]
    except (OSError, KeyError, ValueError):
        return None
    return flop / (median_ns * 1e-9)


def num(v):
    try:
        return float(v)
    except ValueError:
        return None


deep_flop = flop_per_epoch([784, 1024, 1024, 10])
base = rows[0]
over = f"x{base['threads']}t"  # speed-up over the first thread count
head = ["threads", "peak GF/s", "deep s", "deep GF/s (% peak)", f"deep {over}", "torch s", "simplenn x faster",
        "256 s", f"256 {over}", "torch s", "simplenn x faster", "default run s", "sha256"]
table = [head]
for r in rows:
    t = int(r["threads"])
    p = peak(t)
    deep, small = num(r["deep_s"]), num(r["default_s"])
    tdeep, tsmall = num(r["deep_torch_s"]), num(r["default_torch_s"])
    gf = deep_flop / deep / 1e9
    share = f" ({100 * gf * 1e9 / p:.0f} %)" if p else ""
    table.append([
        str(t), f"{p / 1e9:.1f}" if p else "-", f"{deep:.3f}", f"{gf:.1f}{share}",
        f"{float(base['deep_s']) / deep:.2f}", r["deep_torch_s"], f"{tdeep / deep:.2f}" if tdeep else "-",
        f"{small:.3f}", f"{float(base['default_s']) / small:.2f}", r["default_torch_s"],
        f"{tsmall / small:.2f}" if tsmall else "-", r["default_run_s"], r["default_sha256"],
    ])
width = [max(len(row[i]) for row in table) for i in range(len(head))]
for row in table:
    print("  ".join(c.rjust(w) for c, w in zip(row, width)))
PY
