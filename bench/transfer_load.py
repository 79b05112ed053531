#!/usr/bin/env python3
"""Load for bench/transfer.sh (loopback only, bounded in time).

  transfer_load.py backend PORTFILE          echo server; writes its port to PORTFILE
  transfer_load.py clients PORT N MODE SECS STOPFILE
      N connections through PORT. MODE idle: one checked round trip each, then silence.
      MODE busy: every connection keeps one 512-byte checked round trip in flight at all times.
      Runs until STOPFILE exists or SECS pass, then closes everything and prints JSON:
      {"connections": N, "round_trips": ..., "errors": ..., "first_errors": [...]}
"""
import json
import os
import selectors
import socket
import sys
import time


def backend(portfile):
    sel = selectors.DefaultSelector()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4096)
    ls.setblocking(False)
    sel.register(ls, selectors.EVENT_READ)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    pending = {}
    deadline = time.time() + 3600
    while time.time() < deadline:
        for key, ev in sel.select(1.0):
            s = key.fileobj
            if s is ls:
                try:
                    c, _ = ls.accept()
                except BlockingIOError:
                    continue
                c.setblocking(False)
                pending[c] = b""
                sel.register(c, selectors.EVENT_READ)
                continue
            if ev & selectors.EVENT_READ:
                try:
                    d = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    d = None
                except OSError:
                    d = b""
                if d == b"":
                    sel.unregister(s)
                    s.close()
                    pending.pop(s, None)
                    continue
                if d:
                    pending[s] += d
            if pending.get(s):
                try:
                    n = s.send(pending[s])
                    pending[s] = pending[s][n:]
                except BlockingIOError:
                    pass
                except OSError:
                    continue
                sel.modify(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if pending[s] else 0))


def clients(port, n, mode, secs, stopfile):
    sel = selectors.DefaultSelector()
    conns = {}
    errors = []
    trips = 0
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        msg = (b"%08d" % i) * 64  # 512 bytes, distinct per connection
        conns[s] = [msg, b"", 0]
        s.send(msg)
        sel.register(s, selectors.EVENT_READ)
    end = time.time() + secs
    while time.time() < end and not os.path.exists(stopfile):
        for key, _ in sel.select(0.2):
            s = key.fileobj
            st = conns[s]
            try:
                d = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                d = None
                errors.append(str(e))
            if not d:
                if d == b"":
                    errors.append("EOF from the proxy")
                sel.unregister(s)
                continue
            st[1] += d
            if len(st[1]) >= len(st[0]):
                if st[1] != st[0]:
                    errors.append("corrupted echo")
                st[1] = b""
                trips += 1
                st[2] += 1
                if mode == "busy":
                    s.send(st[0])
    # every connection must have completed its round trip (idle) and still be open
    for s, st in conns.items():
        if st[2] == 0:
            errors.append("no echo")
        s.close()
    print(json.dumps({"connections": n, "round_trips": trips, "errors": len(errors), "first_errors": errors[:5]}))


if __name__ == "__main__":
    if sys.argv[1] == "backend":
        backend(sys.argv[2])
    else:
        clients(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), sys.argv[6])
