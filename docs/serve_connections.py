#!/usr/bin/env python3
"""What many stalled uploads cost `simplenn serve`: memory and threads.

Opens N connections, each sending a `POST /api/predict` head with
`Content-Length: 65536` and 65,004 bytes of its body, then one more byte
every 2 s (every read succeeds; the body's 20 s deadline ends them). Prints
the server's VmRSS and thread count at the start, every 2 s for 12 s, and
3 s after the clients close.

    docs/serve_connections.py BINARY MODEL [N]    (N: 1000)
"""
import re, socket, subprocess, sys, time

binary, model = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
p = subprocess.Popen([binary, "serve", "--model", model, "--port", "0"],
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", p.stdout.readline()).group(1))
time.sleep(0.5)


def status():
    d = dict(l.split(":", 1) for l in open(f"/proc/{p.pid}/status"))
    return f"VmRSS {d['VmRSS'].strip()}, {d['Threads'].strip()} threads"


print("start:", status())
head = b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 65536\r\n\r\n"
socks = []
for _ in range(n):
    s = socket.socket()
    s.connect_ex(("127.0.0.1", port))  # past the server's cap: queued by the kernel
    socks.append(s)
for s in socks:
    try:
        s.settimeout(0.05)
        s.sendall(head + b"1" * 65004)
    except OSError:
        pass  # a send buffer full: the server has not taken this one yet
for t in range(1, 7):
    time.sleep(2)
    for s in socks:
        try:
            s.settimeout(0.01)
            s.send(b"1")
        except OSError:
            pass
    print(f"{2 * t} s:", status())
for s in socks:
    s.close()
time.sleep(3)
print("3 s after they closed:", status())
p.terminate()
p.wait()
