"""Summary of interleaved A/B rounds (bench/ab.sh, bench/ab-binaries.sh): reads "PATH RATE"
lines on stdin and prints each path's median, its ratio to the direct path's, and every run;
with paths A and B, also B / A."""
import statistics as S
import sys

r = {}
for line in sys.stdin:
    k, v = line.split()
    r.setdefault(k, []).append(float(v))
d = S.median(r["direct"])
for k, v in r.items():
    print(f"{k:8} median {S.median(v):8.0f} req/s ({S.median(v) / d:.2f} x direct)  runs: " + " ".join(f"{x:.0f}" for x in v))
if "A" in r and "B" in r:
    print(f"B / A: {S.median(r['B']) / S.median(r['A']):.3f}")
