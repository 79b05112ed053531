#!/usr/bin/env python3
"""targets.py BENCH_JSON [PROXY] -> baton's issue targets, PASS/FAIL, from one side-by-side run.
Medians over rounds of the runs with other-tenant CPU <= 0.10 core (as report.py)."""
import json, sys, statistics as S
runs = json.load(open(sys.argv[1]))["runs"]
proxy = sys.argv[2] if len(sys.argv) > 2 else "ours"
N = 1000
def med(p, test, f):
    xs = [f(r) for r in runs if r["proxy"] == p and r["test"] == test and r.get("foreign_core_frac", 0) <= 0.10]
    xs = xs or [f(r) for r in runs if r["proxy"] == p and r["test"] == test]
    return S.median(xs) if xs else None
us = lambda r: 1e6 * r["proxy_cpu_s"] / r["requests"]
gbps = lambda r: r["gbps"]
cpu_gb = lambda r: r["proxy_cpu_s"] / (r["bytes"] / 1e9)
def per_conn(p):
    out = []
    for rnd in sorted({r["round"] for r in runs}):
        a = [r for r in runs if r["proxy"] == p and r["round"] == rnd and r["test"] == "rss_idle_after"]
        b = [r for r in runs if r["proxy"] == p and r["round"] == rnd and r["test"] == f"rss_{N}conns"]
        if a and b: out.append((b[0]["rss_kb"] - a[0]["rss_kb"]) / N)
    return S.median(out) if out else None
rows = []
def check(name, value, op, limit, fmt="{:.2f}", peer=None):
    ok = value is not None and (value >= limit if op == ">=" else value <= limit)
    rows.append((name, fmt.format(value) if value is not None else "-", f"{op} {limit}", "PASS" if ok else "FAIL", peer or ""))
d_ka, d_close = med("direct", "ka", lambda r: r["rps"]), med("direct", "close", lambda r: r["rps"])
d_bulk = S.mean([med("direct", t, gbps) for t in ("iperf_up", "iperf_down")])
def ratio(p, t, d): v = med(p, t, lambda r: r["rps"]); return v / d if v and d else None
bulk = lambda p: S.mean([med(p, t, gbps) for t in ("iperf_up", "iperf_down")]) / d_bulk
cpugb = lambda p: S.mean([med(p, t, cpu_gb) for t in ("iperf_up", "iperf_down")])
hp = lambda f: "HAProxy " + f
check("keep-alive req/s, x direct", ratio(proxy, "ka", d_ka), ">=", 0.95, peer=hp(f"{ratio('haproxy', 'ka', d_ka):.2f}"))
check("new connections/s, x direct", ratio(proxy, "close", d_close), ">=", 0.93, peer=hp(f"{ratio('haproxy', 'close', d_close):.2f}"))
check("CPU per keep-alive request, µs", med(proxy, "ka", us), "<=", 15, "{:.1f}", hp(f"{med('haproxy', 'ka', us):.1f}"))
check("CPU per new connection, µs", med(proxy, "close", us), "<=", 70, "{:.1f}", hp(f"{med('haproxy', 'close', us):.1f}"))
check("bulk (iperf3 up/down mean), x direct", bulk(proxy), ">=", 0.70, peer=hp(f"{bulk('haproxy'):.2f}"))
check("CPU per GB bulk, s", cpugb(proxy), "<=", 0.4, "{:.3f}", hp(f"{cpugb('haproxy'):.3f}"))
check("RSS idle, MiB", med(proxy, "rss_idle_fresh", lambda r: r["rss_kb"] / 1024), "<=", 1.0, "{:.2f}", hp(f"{med('haproxy', 'rss_idle_fresh', lambda r: r['rss_kb'] / 1024):.1f}"))
check(f"user memory per idle connection ({N} open), KiB", per_conn(proxy), "<=", 1.0, "{:.2f}", hp(f"{per_conn('haproxy'):.1f}"))
print(f"\n**Targets for `{proxy}`** (same run)\n\n| target | measured | goal | result | peer |\n|---|---|---|---|---|")
for r in rows: print("| " + " | ".join(r) + " |")
