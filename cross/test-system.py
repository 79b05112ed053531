#!/usr/bin/env python3
"""cross/test-system.py ARCH [--reloads N] : full-system test of the firmware image under QEMU.

Boots target/qemu-ARCH (built by board/qemu/build-image.sh) with qemu-system, waits for the
init script to bring baton up, then, while host clients fetch a 64 KiB file through QEMU's port
forwarding -> baton in the guest -> BusyBox httpd in the guest (every body checked by SHA-256),
runs `S50baton reload` and `S50baton restart` inside the guest N times each and a binary upgrade
(a second build installed over the first, then reload). A request held half-sent across the
first reload and restart completes after the old process has exited (its connection was moved
to the new process, not drained). Asserts zero failed requests, that the
PID file names the live owner after each step, that the upgraded version answers /stats, and
that `S50baton stop` leaves no process and no stale file, and that baton's log reaches syslog
(the image runs BusyBox syslogd) and its log sink ends with it. Prints a JSON line of figures and
"N passed, N failed". Every wait is bounded; QEMU is killed by PID at the end, whatever happens.
"""
import hashlib, json, os, random, re, socket, subprocess, sys, threading, time

ARCH = sys.argv[1]
RELOADS = int(sys.argv[sys.argv.index("--reloads") + 1]) if "--reloads" in sys.argv else 3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", f"qemu-{ARCH}")
BOOT_LIMIT = {"aarch64": 90, "armv7": 150}[ARCH]
random.seed(7)
BODY = bytes(random.getrandbits(8) for _ in range(65536))
BODY_SHA = hashlib.sha256(BODY).hexdigest()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Console:
    """A shell on the guest's serial console, through QEMU's chardev socket."""

    def __init__(self, path, log):
        self.buf, self.lock, self.n = "", threading.Lock(), 0
        t = time.time()
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                if time.time() - t > 20:
                    raise
                time.sleep(0.1)
        self.log = open(log, "w")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                d = self.s.recv(4096)
            except OSError:
                return
            if not d:
                return
            text = d.decode("utf-8", "replace")
            self.log.write(text)
            self.log.flush()
            with self.lock:
                self.buf += text

    def wait_for(self, pattern, limit):
        t = time.time()
        while time.time() - t < limit:
            with self.lock:
                m = re.search(pattern, self.buf)
            if m:
                return m
            time.sleep(0.05)
        raise TimeoutError(f"no {pattern!r} on the console within {limit}s")

    def run(self, cmd, limit=60):
        """Runs cmd in the guest shell; returns (exit code, output)."""
        self.n += 1
        mark = f"__DONE_{self.n}__"
        with self.lock:
            start = len(self.buf)
        self.s.sendall(f"{cmd}; echo {mark} $?\n".encode())
        m = self.wait_for(rf"{mark} (\d+)", limit)
        with self.lock:
            out = self.buf[start:m.start()]
        return int(m.group(1)), out


def http_get(port, path, limit=20):
    s = socket.create_connection(("127.0.0.1", port), timeout=limit)
    s.settimeout(limit)
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: g\r\n\r\n".encode())
    return read_response(s)


def read_response(s):
    """Reads an HTTP/1.0 response to its end and closes `s`: (status, body)."""
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b" ")[1].decode() if b" " in head else "?", body


class Load:
    def __init__(self, port, workers):
        self.ok = self.failed = 0
        self.errors = []
        self.stop = False
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._work, args=(port,)) for _ in range(workers)]
        for t in self.threads:
            t.start()

    def _work(self, port):
        while not self.stop:
            try:
                status, body = http_get(port, "/64k")
                good = status == "200" and hashlib.sha256(body).hexdigest() == BODY_SHA
                err = None if good else f"status {status}, {len(body)} bytes"
            except OSError as e:
                good, err = False, repr(e)
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1
                    if len(self.errors) < 10:
                        self.errors.append(err)

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join(timeout=60)
        return self.ok, self.failed, self.errors


def main():
    http_port, admin_port = free_port(), free_port()
    sock = os.path.join(OUT, "console.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    if ARCH == "aarch64":
        qemu = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a53"]
    else:
        qemu = ["qemu-system-arm", "-M", "virt,highmem=off", "-cpu", "cortex-a15"]
    qemu += ["-smp", "1", "-m", "256M", "-display", "none", "-monitor", "none", "-no-reboot",
             "-kernel", os.path.join(OUT, "vmlinuz"), "-initrd", os.path.join(OUT, "initramfs.cpio.gz"),
             "-append", "console=ttyAMA0 panic=-1 quiet",
             "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{http_port}-:8080,hostfwd=tcp:127.0.0.1:{admin_port}-:34901",
             "-device", "virtio-net-pci,netdev=n0,romfile=",
             "-chardev", f"socket,id=con,path={sock},server=on,wait=off", "-serial", "chardev:con"]
    checks, figures = [], {"arch": ARCH}

    def check(name, ok, detail=""):
        checks.append((name, bool(ok)))
        print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}", flush=True)

    t_start = time.time()
    q = subprocess.Popen(qemu, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(os.path.join(OUT, "qemu.err"), "w"))
    try:
        con = Console(sock, os.path.join(OUT, "console.log"))
        m = con.wait_for(r"BATON-READY uptime=([\d.]+) start_s=([\d.]+) pid=(\d+)", BOOT_LIMIT)
        figures["boot_to_ready_s"] = round(time.time() - t_start, 2)
        figures["guest_uptime_at_ready_s"] = float(m.group(1))
        figures["init_script_start_s"] = float(m.group(2))
        con.run("stty -echo 2>/dev/null; true", 10)
        rc, out = con.run("grep VmRSS /proc/$(cat /var/run/baton.pid)/status", 20)
        rss = re.search(r"VmRSS:\s+(\d+)", out)
        figures["idle_rss_kib"] = int(rss.group(1)) if rss else None
        check("baton started by S50baton", rc == 0 and rss, out.strip())
        rc, out = con.run("echo serving-lines=$(logread | grep -c 'baton: .*serving'); ls /var/log", 20)
        n = re.search(r"serving-lines=(\d+)", out)
        check("baton's log goes to syslog (logread), not to a file",
              n and int(n.group(1)) > 0 and "baton.log" not in out, out.strip().replace("\n", " | "))

        def stats():
            st, body = http_get(admin_port, "/stats", 10)
            return json.loads(body) if st == "200" else {}

        t = time.time()
        first = {}
        while time.time() - t < 30 and not first:
            try:
                first = stats()
            except OSError:
                time.sleep(0.5)
        check("/stats through port forwarding", first.get("version"), str(first.get("version")))

        load = Load(http_port, 8)
        time.sleep(3)

        def held_request():
            # a request whose end comes later: the connection stays open through a restart
            s = socket.create_connection(("127.0.0.1", http_port), timeout=30)
            s.settimeout(30)
            s.sendall(b"GET /64k HTTP/1.0\r\n")
            return s

        def finish_held(s):
            s.sendall(b"Host: g\r\n\r\n")
            status, body = read_response(s)
            return status == "200" and hashlib.sha256(body).hexdigest() == BODY_SHA, f"status {status}, {len(body)} bytes"

        def one_baton(limit=20):
            # the old process exits once its connections have moved (transfer), long before
            # the guest config's 5 s drain deadline would have cut the held request
            t = time.time()
            while time.time() - t < limit:
                rc, out = con.run("pidof baton | wc -w", 20)
                lines = out.strip().splitlines()
                if lines and lines[-1].strip() == "1":
                    return True, f"after {time.time() - t:.1f} s"
                time.sleep(0.5)
            return False, "old process still running"

        def owner_alive(step):
            rc, out = con.run('p=$(cat /var/run/baton.pid) && [ -d /proc/$p ] && tr "\\0" " " < /proc/$p/cmdline | grep -q baton && echo owner=$p', 20)
            check(f"{step}: PID file names the live owner", rc == 0, out.strip().splitlines()[-1] if out.strip() else "")

        for k in range(RELOADS):
            held = held_request() if k == 0 else None
            rc, out = con.run("/etc/init.d/S50baton reload", 60)
            # `baton reload` answers only once the new process serves
            check(f"reload {k + 1} (baton reload: done when it returns)", rc == 0 and "took over and serves" in out,
                  out.strip().splitlines()[-1] if out.strip() else "")
            if held:
                check("reload: the old process exits while a request is half-sent (moved)", *one_baton())
                check("reload: the held request completes through the new process", *finish_held(held))
            time.sleep(1)
            owner_alive(f"reload {k + 1}")
            held = held_request() if k == 0 else None
            rc, out = con.run("/etc/init.d/S50baton restart", 60)
            check(f"restart {k + 1}", rc == 0, out.strip().splitlines()[-1] if out.strip() else "")
            if held:
                check("restart: the old process exits while a request is half-sent (moved)", *one_baton())
                check("restart: the held request completes through the new process", *finish_held(held))
            time.sleep(1)
            owner_alive(f"restart {k + 1}")
        # a reload with a bad config: S50baton reports baton's error and the owner serves on
        before = stats()
        rc, out = con.run("cp /etc/baton/baton.json /tmp/good.json && "
                          "sed -i 's/\"max_connections\"/\"max_conections\"/' /etc/baton/baton.json && "
                          "/etc/init.d/S50baton reload; echo reload-rc=$?; cp /tmp/good.json /etc/baton/baton.json", 60)
        m = re.search(r"reload-rc=(\d+)", out)
        check("a reload with a bad config fails through S50baton with baton's reason",
              m and m.group(1) != "0" and "FAIL: config /etc/baton/baton.json" in out and "max_conections" in out,
              out.strip().splitlines()[0] if out.strip() else "")
        after = stats()
        check("after the failed reload the same process serves the same generation",
              after.get("pid") == before.get("pid") and after.get("generation") == before.get("generation"),
              f"pid {before.get('pid')} -> {after.get('pid')}, generation {before.get('generation')} -> {after.get('generation')}")
        owner_alive("failed reload")
        rc, out = con.run("cp /opt/baton-upgrade /usr/bin/baton.new && mv /usr/bin/baton.new /usr/bin/baton && /etc/init.d/S50baton reload", 60)
        check("binary upgrade + reload", rc == 0, out.strip().splitlines()[-1] if out.strip() else "")
        t = time.time()
        upgraded = {}
        while time.time() - t < 20:
            try:
                upgraded = stats()
            except OSError:
                upgraded = {}
            if upgraded.get("version", "").endswith("-upgrade"):
                break
            time.sleep(0.5)
        check("the new version answers /stats", upgraded.get("version", "").endswith("-upgrade"), str(upgraded.get("version")))
        owner_alive("upgrade")
        rc, out = con.run("/etc/init.d/S50baton status", 20)
        check("status: baton status's table (serving, the generation after every restart, the listener)",
              rc == 0 and re.search(r"generation %d, serving" % (2 * RELOADS + 1), out) and "127.0.0.1:8081" in out,
              out.strip().splitlines()[0] if out.strip() else str(rc))
        time.sleep(2)
        ok, failed, errors = load.finish()
        figures.update({"requests_ok": ok, "requests_failed": failed, "restarts": 2 * RELOADS + 1})
        check("zero failed requests across every reload, restart and upgrade", failed == 0 and ok > 0, f"{ok} ok, {failed} failed {errors}")

        rc, out = con.run("/etc/init.d/S50baton stop; sleep 0.5; pidof baton; ls -A /var/run/baton /var/run/baton.pid 2>&1", 60)
        left = out.split("\n")
        no_proc = "pidof" not in out and not re.search(r"^\s*\d+(\s+\d+)*\s*$", out, re.M)
        check("stop leaves no baton process", no_proc, out.strip().replace("\n", " | "))
        check("stop leaves no stale socket or PID file", "reconfig.sock" not in out and "listen.sock" not in out and "No such file" in out, "")
        rc, _ = con.run("/etc/init.d/S50baton status", 20)
        check("status after stop is 3 (stopped)", rc == 3, str(rc))
        rc, out = con.run("pidof logger || echo no-logger", 20)
        check("stop leaves no log sink (logger) behind", "no-logger" in out, out.strip().replace("\n", " | "))
    except Exception as e:  # report, never hang
        check("no unexpected error", False, repr(e))
    finally:
        q.kill()
        q.wait(timeout=20)
    passed = sum(1 for _, ok in checks if ok)
    print(json.dumps(figures))
    print(f"{ARCH}: {passed} passed, {len(checks) - passed} failed")
    sys.exit(0 if passed == len(checks) else 1)


if __name__ == "__main__":
    main()
