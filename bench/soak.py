#!/usr/bin/env python3
"""Bounded soak (not in CI): SECS seconds of mixed load through a static baton with a hot
restart every EVERY seconds (alternating SIGHUP and a hand-started process), sampling the
serving process's RSS and descriptor count, the number of baton processes, and client latency.

  python3 bench/soak.py [SECS=600] [EVERY=30]
  BATON_SOAK_EXTRA='{"splice": true, "buffer_size": 262144}' python3 bench/soak.py 180 20

Load (loopback only): 8 workers opening short connections in a loop (1 KiB each way, checked),
50 long-lived streams (256-byte checked round trips every 50 ms) that live through every restart
(live connection transfer), against a Python echo backend. Prints a markdown table and writes
bench/results/soak-<date>.json. Exit status 1 if any connection failed.
"""
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target/x86_64-unknown-linux-musl/release/baton")
SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 600
EVERY = int(sys.argv[2]) if len(sys.argv) > 2 else 30
SAMPLE = 10
# more "baton" settings, e.g. BATON_SOAK_EXTRA='{"splice": true, "buffer_size": 262144}'
EXTRA = json.loads(os.environ.get("BATON_SOAK_EXTRA", "{}"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.failed = 0
        self.errors = []
        self.lat = []

    def done(self, ok, err=None, lat=None):
        with self.lock:
            if ok:
                self.ok += 1
            else:
                self.failed += 1
                if len(self.errors) < 10:
                    self.errors.append(err)
            if lat is not None:
                self.lat.append(lat)

    def take_latencies(self):
        with self.lock:
            v, self.lat = self.lat, []
        return v


def short_worker(port, st, stop, k):
    n = 0
    while not stop.is_set():
        data = (b"%06d%06d" % (k, n)) * 85 + b"x" * 4
        n += 1
        t0 = time.monotonic()
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            back = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                back += d
            s.close()
            if back != data:
                st.done(False, f"short: {len(back)} of {len(data)} bytes or corrupted")
            else:
                st.done(True, lat=time.monotonic() - t0)
        except OSError as e:
            st.done(False, f"short: {e}")


def long_stream(port, st, stop, k):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        rounds = 0
        while not stop.is_set():
            msg = (b"%04d%08d" % (k, rounds)) * 21 + b"zzzz"
            s.sendall(msg)
            back = b""
            while len(back) < len(msg):
                d = s.recv(len(msg) - len(back))
                if not d:
                    raise OSError("EOF from the proxy")
                back += d
            if back != msg:
                raise OSError("corrupted")
            rounds += 1
            time.sleep(0.05)
        s.shutdown(socket.SHUT_WR)
        if s.recv(1) != b"":
            raise OSError("trailing bytes")
        s.close()
        st.done(True)
    except OSError as e:
        st.done(False, f"long stream {k}: {e}")


def proc_info(pid):
    rss = 0
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None, None
    return rss, fds


def batons(conf):
    n = 0
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if conf in open(f"/proc/{p}/cmdline").read():
                    st = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0]
                    n += st != "Z"
            except OSError:
                pass
    return n


def main():
    if not os.path.exists(BIN):
        subprocess.check_call(["cargo", "build", "--release", "--target", "x86_64-unknown-linux-musl"], cwd=ROOT)
    d = tempfile.mkdtemp(prefix="baton-soak.")
    procs = []
    stop = threading.Event()
    try:
        bport_file = os.path.join(d, "bport")
        procs.append(subprocess.Popen([sys.executable, os.path.join(ROOT, "bench/transfer_load.py"), "backend", bport_file]))
        while not os.path.exists(bport_file):
            time.sleep(0.05)
        bport = int(open(bport_file).read())
        lport = free_port()
        conf = os.path.join(d, "soak.json")
        pidf = os.path.join(d, "pid")
        cfg = {
            "servers": [{"listeners": [{"name": "l", "address": f"127.0.0.1:{lport}",
                                        "filter_chains": [{"filters": [{"type": "tcp_proxy", "config": {"cluster": "c"}}]}]}]}],
            "cluster_manager": {"clusters": [{"name": "c", "hosts": [{"address": f"127.0.0.1:{bport}"}]}]},
            "baton": {"runtime_dir": os.path.join(d, "run"), "pid_file": pidf, "drain_timeout": "20s",
                      "max_connections": 1024, "max_draining": 4},
        }
        cfg["baton"].update(EXTRA)
        json.dump(cfg, open(conf, "w"))
        log = open(os.path.join(d, "log"), "w")
        procs.append(subprocess.Popen([BIN, "-c", conf], stderr=log, stdin=subprocess.DEVNULL, start_new_session=True))
        while not os.path.exists(pidf):
            time.sleep(0.02)
        st = Stats()
        threads = [threading.Thread(target=short_worker, args=(lport, st, stop, k)) for k in range(8)]
        threads += [threading.Thread(target=long_stream, args=(lport, st, stop, k)) for k in range(50)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        next_restart, next_sample, restarts = t0 + EVERY, t0, 0
        rows = []
        while time.monotonic() - t0 < SECS:
            now = time.monotonic()
            if now >= next_restart:
                if restarts % 2 == 0:
                    os.kill(int(open(pidf).read()), signal.SIGHUP)
                else:
                    procs.append(subprocess.Popen([BIN, "-c", conf], stderr=log, stdin=subprocess.DEVNULL,
                                                  start_new_session=True))
                restarts += 1
                next_restart += EVERY
            if now >= next_sample:
                time.sleep(0.5)  # let a restart that just happened settle
                pid = int(open(pidf).read())
                rss, fds = proc_info(pid)
                lat = sorted(st.take_latencies())
                rows.append({
                    "t_s": round(time.monotonic() - t0), "pid": pid, "rss_kib": rss, "fds": fds,
                    "processes": batons(conf), "restarts": restarts, "ok": st.ok, "failed": st.failed,
                    "lat_p50_ms": round(1000 * lat[len(lat) // 2], 2) if lat else None,
                    "lat_p99_ms": round(1000 * lat[int(len(lat) * 0.99)], 2) if lat else None,
                })
                next_sample += SAMPLE
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(30)
        final = {"secs": SECS, "every": EVERY, "baton_extra": EXTRA, "restarts": restarts, "ok": st.ok, "failed": st.failed,
                 "errors": st.errors, "rows": rows}
        out = os.path.join(ROOT, "bench/results", time.strftime("soak-%Y%m%d-%H%M%S.json"))
        json.dump(final, open(out, "w"), indent=1)
        print(f"| t (s) | restarts | RSS (KiB) | fds | baton processes | connections ok | failed | latency p50 / p99 (ms) |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows[:: max(1, len(rows) // 20)] + ([rows[-1]] if rows else []):
            print(f"| {r['t_s']} | {r['restarts']} | {r['rss_kib']} | {r['fds']} | {r['processes']} | {r['ok']} | "
                  f"{r['failed']} | {r['lat_p50_ms']} / {r['lat_p99_ms']} |")
        rss = [r["rss_kib"] for r in rows if r["rss_kib"]]
        fds = [r["fds"] for r in rows if r["fds"]]
        print(f"\n{SECS} s, {restarts} hot restarts, {st.ok} connections completed, {st.failed} failed {st.errors}")
        print(f"RSS {min(rss)}-{max(rss)} KiB (median {statistics.median(rss)}), fds {min(fds)}-{max(fds)}")
        print(f"results: {out}")
        return 1 if st.failed else 0
    finally:
        stop.set()
        for p in procs:
            try:
                p.kill()
            except OSError:
                pass
        subprocess.call(["pkill", "-KILL", "-f", d])
        subprocess.call(["rm", "-rf", d])


if __name__ == "__main__":
    sys.exit(main())
