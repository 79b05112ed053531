#!/usr/bin/env python3
"""bench/sockmap/guarantees.py: what the kernel's sockmap redirect does to the guarantees baton's
normal path gives (issue 16), measured on the prototype and on baton side by side.

  1. bytes unchanged: 16 MiB each way, SHA-256 compared;
  2. backpressure: the upstream accepts and does not read for a while; how many bytes can the
     client hand to the path before its send blocks, how much memory TCP accounts for then
     (/proc/net/sockstat "TCP ... mem") and how much MemAvailable dropped (/proc/meminfo);
  3. FIN after data, slow reader: the client sends 32 MiB and half-closes at once; the upstream
     starts reading a second later; does it get every byte before the EOF?
Every loop is bounded (sizes and timeouts). Needs root (BPF). Not a test; prints a table."""
import hashlib, os, socket, subprocess, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROTO = os.environ.get("PROTO_BIN", f"{ROOT}/target/sockmap-proto/release/sockmap-proto")
BATON = os.environ.get("BATON_BIN", f"{ROOT}/target/x86_64-unknown-linux-musl/release/baton")
UP, P_PROTO, P_BATON = 19900, 19901, 19902
CAP = 1 << 30  # backpressure probe stops after 1 GiB whatever happens


def mem_available():
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def tcp_mem_pages():
    for line in open("/proc/net/sockstat"):
        if line.startswith("TCP:"):
            f = line.split()
            return int(f[f.index("mem") + 1])
    return 0


class Upstream:
    """One-connection-at-a-time upstream with a per-test behaviour."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", UP))
        self.ls.listen(16)
        self.ls.settimeout(10)

    def accept(self):
        c, _ = self.ls.accept()
        c.settimeout(30)
        return c


def read_all(s, limit):
    """(bytes, sha256, how it ended: "EOF" or the error)."""
    h, n = hashlib.sha256(), 0
    try:
        while n < limit:
            b = s.recv(1 << 16)
            if not b:
                return n, h.hexdigest(), "EOF"
            h.update(b)
            n += len(b)
    except OSError as e:
        return n, h.hexdigest(), e.strerror
    return n, h.hexdigest(), "limit"


def unchanged(port, up):
    data_up, data_down = os.urandom(16 << 20), os.urandom(16 << 20)
    res = {}

    def server():
        s = up.accept()
        t = threading.Thread(target=lambda: (s.sendall(data_down), s.shutdown(socket.SHUT_WR)))
        t.start()
        res["up"] = read_all(s, 64 << 20)
        t.join()
        s.close()

    th = threading.Thread(target=server)
    th.start()
    c = socket.create_connection(("127.0.0.1", port), timeout=30)
    t = threading.Thread(target=lambda: (c.sendall(data_up), c.shutdown(socket.SHUT_WR)))
    t.start()
    res["down"] = read_all(c, 64 << 20)
    t.join()
    th.join()
    c.close()
    ok = res["up"] == (len(data_up), hashlib.sha256(data_up).hexdigest(), "EOF") and res["down"] == (len(data_down), hashlib.sha256(data_down).hexdigest(), "EOF")
    return "yes" if ok else f"NO (up {res['up'][0]} of {len(data_up)}, {res['up'][2]}; down {res['down'][0]} of {len(data_down)}, {res['down'][2]})"


def backpressure(port, up):
    held = {}
    th = threading.Thread(target=lambda: held.setdefault("s", up.accept()))
    th.start()
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    th.join()
    m0, a0 = tcp_mem_pages(), mem_available()
    c.setblocking(False)
    chunk, sent, last = b"x" * (1 << 16), 0, time.monotonic()
    while sent < CAP and time.monotonic() - last < 1.0:
        try:
            sent += c.send(chunk)
            last = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
    time.sleep(0.5)
    m1, a1 = tcp_mem_pages(), mem_available()
    c.close()
    held["s"].close()
    time.sleep(0.5)
    return sent, (m1 - m0) * 4096, a0 - a1


def fin_after_data(port, up):
    data = os.urandom(32 << 20)
    got = {}

    def server():
        s = up.accept()
        time.sleep(1.0)
        got["r"] = read_all(s, 64 << 20)
        s.close()

    th = threading.Thread(target=server)
    th.start()
    c = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    th.join()
    c.close()
    n, h, end = got["r"]
    return "yes" if (n, h, end) == (len(data), hashlib.sha256(data).hexdigest(), "EOF") else f"NO: {n} of {len(data)} bytes, then {end}"


def main():
    procs = []
    rd = "/tmp/sockmap-guarantees"
    os.makedirs(rd, exist_ok=True)
    try:
        up = Upstream()
        procs.append(subprocess.Popen([PROTO, str(P_PROTO), str(UP), "64"]))
        procs.append(subprocess.Popen(["bash", f"{ROOT}/bench/baton-run.sh", str(P_BATON), str(UP), rd], env=dict(os.environ, BATON_BIN=BATON)))
        time.sleep(1.0)
        rows = []
        for name, port in (("baton (normal path)", P_BATON), ("sockmap prototype", P_PROTO)):
            u = unchanged(port, up)
            sent, mem, gone = backpressure(port, up)
            f = fin_after_data(port, up)
            rows.append((name, u, sent, mem, gone, f))
        print("| path | 16 MiB each way unchanged | bytes taken before the client's send blocked (upstream not reading; cap 1 GiB) | TCP memory then | MemAvailable drop then | 32 MiB + FIN, reader starting 1 s late: all bytes before EOF |")
        print("|---|---|---|---|---|---|")
        for name, u, sent, mem, gone, f in rows:
            cap = " (cap reached)" if sent >= CAP else ""
            print(f"| {name} | {u} | {sent / 2**20:.1f} MiB{cap} | {mem / 2**20:.1f} MiB | {gone / 2**20:.0f} MiB | {f} |")
    finally:
        for p in procs:
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()
