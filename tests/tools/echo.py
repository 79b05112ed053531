# tests/tools/echo.py PORT : an echo server on 127.0.0.1:PORT (0: any free port), a thread per
# connection; prints the port once listening. The upstream of tests/page/chromium.sh and of the
# systemd guest (tests/packaging/systemd.sh copies it in).
import socket, sys, threading
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(128)
print(l.getsockname()[1], flush=True)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = l.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
