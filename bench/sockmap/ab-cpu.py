#!/usr/bin/env python3
"""bench/sockmap/ab-cpu.py [ka|close|bulk] [ROUNDS] [SECONDS]

Issue 16's prototype measurement: direct, baton (normal path), HAProxy and the sockmap prototype
in turn, ROUNDS times (interleaved as bench/ab.sh), load on CPU 0 and the proxies on CPU 1.
For each run it records the rate and three CPU figures per request (or per GB for bulk):
  proxy    the proxy process's own utime+stime,
  machine  every busy jiffy of both cores (/proc/stat), which also counts softirqs and kworkers
           wherever the kernel ran them, and
  added    machine minus the direct path's machine figure of the same round: the CPU that
           putting the proxy in the path costs, whoever is charged for it.
With sockmap the forwarding runs in softirq and in kworkers on whichever core the data came in
on, not in the proxy process, so only "added" compares the paths fairly. Needs root (the
prototype loads BPF), the harness's peers (bench/prepare.sh) and the baton release build.
Not a test."""
import os, re, statistics as S, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCH)
HZ = os.sysconf("SC_CLK_TCK")
LOAD, ROUNDS, SECS = (sys.argv[1:] + ["ka"])[0], int((sys.argv[2:] + ["5"])[0]), int((sys.argv[3:] + ["4"])[0])
PROTO = os.environ.get("PROTO_BIN", f"{ROOT}/target/sockmap-proto/release/sockmap-proto")
PATHS = {"direct": 18080, "baton": 19800, "haproxy": 19802, "sockmap": 19806}


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True, **kw).stdout


def machine_busy():
    f = open("/proc/stat").readline().split()[1:]
    v = [int(x) for x in f]
    return (sum(v) - v[3] - v[4]) / HZ  # all but idle and iowait, seconds


def proc_cpu(pid):
    s = open(f"/proc/{pid}/stat").read()
    r = s[s.rindex(")") + 2:].split()
    return sum(int(x) for x in r[11:15]) / HZ


def pid_of(name):
    return int(open(f"/tmp/bench/run/{name}/pid").read())


def run_load(port):
    if LOAD == "bulk":
        out = sh(f"taskset -c 0 iperf3 -c 127.0.0.1 -p {port} -t {SECS} -J", timeout=SECS + 30)
        import json
        j = json.loads(out)["end"]["sum_received"]
        return j["bytes"] / 1e9, j["bits_per_second"] / 1e9  # GB moved, Gbit/s
    hdr = "-H 'Connection: close'" if LOAD == "close" else ""
    out = sh(f"taskset -c 0 wrk -t1 -c50 -d{SECS}s {hdr} http://127.0.0.1:{port}/100b", timeout=SECS + 30)
    n = int(re.search(r"(\d+) requests in", out).group(1))
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if errs:
        print(f"  warning: {errs.group(0)}", file=sys.stderr)
    return n, n / SECS


def main():
    port_of = dict(PATHS)
    if LOAD == "bulk":
        port_of["direct"] = 15201
    sh(f"bash {BENCH}/prepare.sh")
    env = dict(os.environ, OURS_CMD=f"{BENCH}/baton-run.sh %L %U %R")
    up = 15201 if LOAD == "bulk" else 18080
    procs = []
    try:
        sh(f"bash {BENCH}/backend.sh start")
        subprocess.run(f"bash {BENCH}/proxyctl.sh start ours 19800 {up}", shell=True, env=env, check=True, capture_output=True)
        subprocess.run(f"bash {BENCH}/proxyctl.sh start haproxy 19802 {up}", shell=True, check=True, capture_output=True)
        p = subprocess.Popen(["setsid", "taskset", "-c", "1", PROTO, "19806", str(up), "1200"], stderr=subprocess.PIPE)
        procs.append(p)
        time.sleep(0.5)
        if p.poll() is not None:
            sys.exit("sockmap-proto did not start: " + p.stderr.read().decode())
        pids = {"direct": None, "baton": pid_of("ours"), "haproxy": pid_of("haproxy"), "sockmap": p.pid}
        res = {k: [] for k in PATHS}
        for _ in range(ROUNDS):
            base = None
            for name in PATHS:
                pid = pids[name]
                c0, m0 = (proc_cpu(pid) if pid else 0.0), machine_busy()
                n, rate = run_load(port_of[name])
                c1, m1 = (proc_cpu(pid) if pid else 0.0), machine_busy()
                per = 1e6 if LOAD != "bulk" else 1.0  # µs per request, or s per GB
                mach = (m1 - m0) / n * per
                if name == "direct":
                    base = mach
                res[name].append((rate, (c1 - c0) / n * per, mach, mach - base))
                print(f"{name:8} rate {rate:10.2f}  proxy {(c1 - c0) / n * per:7.3f}  machine {mach:7.3f}  added {mach - base:7.3f}", file=sys.stderr)
        unit = "µs/request" if LOAD != "bulk" else "CPU s/GB"
        rname = {"ka": "req/s", "close": "conn/s", "bulk": "Gbit/s"}[LOAD]
        d = S.median(r[0] for r in res["direct"])
        print(f"load {LOAD}, {ROUNDS} rounds of {SECS} s, medians [min-max]; CPU in {unit}")
        print(f"| path | {rname} | x direct | proxy process CPU | machine CPU | added vs direct |")
        print("|---|---|---|---|---|---|")
        for name, rs in res.items():
            cols = []
            for i in range(4):
                v = [r[i] for r in rs]
                fmt = "{:.0f}" if (i == 0 and LOAD != "bulk") else "{:.2f}" if i == 0 else "{:.1f}" if LOAD != "bulk" else "{:.3f}"
                cols.append(f"{fmt.format(S.median(v))} [{fmt.format(min(v))}-{fmt.format(max(v))}]")
            ratio = S.median(r[0] for r in rs) / d
            print(f"| {name} | {cols[0]} | {ratio:.2f} | {cols[1]} | {cols[2]} | {cols[3]} |")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        subprocess.run(f"bash {BENCH}/proxyctl.sh stop ours; bash {BENCH}/proxyctl.sh stop haproxy; bash {BENCH}/backend.sh stop", shell=True, capture_output=True)


if __name__ == "__main__":
    main()
