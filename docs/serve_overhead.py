#!/usr/bin/env python3
"""What serving the live page costs a training run, measured two ways.

1. Wall time per epoch: ROUNDS interleaved runs each of plain training,
   `--serve` with no page open, and `--serve` with the live page open in
   headless Chromium; the median s/epoch of epochs 3..EPOCHS of each run
   (epochs 1-2 overlap the browser's start-up).
2. CPU time, which other jobs on a shared machine blur less: in the runs
   with the page open, from the end of epoch 2 to the end of training, the
   CPU seconds of the whole simplenn process, of its threads other than the
   training pool's (the HTTP server's, the main thread), and of the whole
   Chromium process tree, read from /proc.

    docs/serve_overhead.py [ROUNDS] [EPOCHS] [train flags...]
"""
import os, re, signal, statistics, subprocess, sys, tempfile, time

BIN = "target/release/simplenn"
TICK = os.sysconf("SC_CLK_TCK")
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
epochs = sys.argv[2] if len(sys.argv) > 2 else "6"
flags = sys.argv[3:]
base = [BIN, "--epochs", epochs, "--no-save", "--no-progress", *flags]


def epoch_secs(text):
    s = [float(m) for m in re.findall(r"^epoch .*?  ([0-9.]+) s  \d+ samples/s$", text, re.M)]
    return statistics.median(s[2:] if len(s) > 2 else s)


def cpu(stat_path):
    try:
        f = open(stat_path).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK  # utime, stime
    except OSError:
        return 0.0


def threads(pid):  # live threads: name, CPU s
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
        out[tid] = (name, cpu(f"/proc/{pid}/task/{tid}/stat"))
    return out


def tree_cpu(root):
    kids = {}
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        kids.setdefault(ppid, []).append(int(p))
    total, todo = 0.0, [root]
    while todo:
        p = todo.pop()
        total += cpu(f"/proc/{p}/stat")
        todo += kids.get(p, [])
    return total


def served(serve, page):
    """One run, watched the same way with or without --serve (the watcher
    polls the log 5 times a second and reads /proc twice)."""
    log = tempfile.NamedTemporaryFile("w+", delete=False)
    run = subprocess.Popen(base + (["--serve", "0"] if serve else []), stdout=log,
                           stderr=subprocess.DEVNULL)
    text = ""
    while serve and "http://" not in text:
        time.sleep(0.05)
        text = open(log.name).read()
    chrome = None
    profile = tempfile.mkdtemp()
    if page:
        url = re.search(r"http://[0-9.:]+/", text).group(0)
        chrome = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
             f"--user-data-dir={profile}", "--remote-debugging-port=0", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def sample():
        th = threads(run.pid)
        other = sum(c for n, c in th.values() if not re.fullmatch(r"simplenn-\d+", n))
        return cpu(f"/proc/{run.pid}/stat"), other, tree_cpu(chrome.pid) if chrome else 0.0
    while not re.search(rf"^epoch +2/{epochs} ", text, re.M):
        time.sleep(0.2)
        text = open(log.name).read()
    t0 = sample()
    while not re.search(rf"^epoch +{epochs}/{epochs} ", text, re.M):
        time.sleep(0.2)
        text = open(log.name).read()
    t1 = sample()
    while serve and "training done" not in text:
        time.sleep(0.2)
        text = open(log.name).read()
    total, other, browser = (b - a for a, b in zip(t0, t1))
    if serve:
        run.send_signal(signal.SIGINT)
    run.wait()
    text = open(log.name).read()
    if chrome:
        chrome.terminate()
        chrome.wait()
    subprocess.run(["rm", "-rf", profile, log.name])
    return epoch_secs(text), total - other, other, browser


print(subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo; nproc; uptime"],
                     capture_output=True, text=True).stdout.strip())
rows = []
for r in range(rounds):
    plain = served(False, False)[0]
    nopage = served(True, False)[0]
    page, pool, other, browser = served(True, True)
    rows.append((plain, nopage, page, pool, other, browser))
    print(f"round {r + 1}: s/epoch plain {plain:.3f}, --serve no page {nopage:.3f}, "
          f"--serve + page {page:.3f}; CPU s: training pool {pool:.2f}, "
          f"server + main thread {other:.2f}, chromium {browser:.2f}", flush=True)
med = [statistics.median(c) for c in zip(*rows)]
print(f"median of {rounds}: s/epoch plain {med[0]:.3f}, --serve no page {med[1]:.3f} "
      f"({100 * (med[1] / med[0] - 1):+.1f} %), --serve + page {med[2]:.3f} "
      f"({100 * (med[2] / med[0] - 1):+.1f} %); CPU: server + main {med[4]:.2f} s = "
      f"{100 * med[4] / med[3]:.2f} % of the pool's {med[3]:.2f} s, chromium {med[5]:.2f} s = "
      f"{100 * med[5] / med[3]:.1f} %")
