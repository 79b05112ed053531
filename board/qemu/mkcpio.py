#!/usr/bin/env python3
"""mkcpio.py DIR OUT.cpio.gz : a newc initramfs of DIR, owned by root, with /dev/console,
written without root privileges or the cpio tool."""
import gzip, os, stat, sys

def entry(out, name, mode, data=b"", ino=[1000], rdev=(0, 0)):
    ino[0] += 1
    hdr = "070701" + "".join(f"{v:08x}" for v in (
        ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0))
    out.write(hdr.encode() + name.encode() + b"\0")
    out.write(b"\0" * ((4 - (110 + len(name) + 1) % 4) % 4))
    out.write(data)
    out.write(b"\0" * ((4 - len(data) % 4) % 4))

root, dest = sys.argv[1], sys.argv[2]
with gzip.open(dest, "wb", compresslevel=6) as out:
    for d, dirs, files in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(d, root)
        if rel != ".":
            entry(out, rel, stat.S_IFDIR | 0o755)
        for f in sorted(files) + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            p = os.path.join(d, f)
            name = os.path.normpath(os.path.join(rel, f))
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                entry(out, name, stat.S_IFLNK | 0o777, os.readlink(p).encode())
            else:
                entry(out, name, stat.S_IFREG | (st.st_mode & 0o7777), open(p, "rb").read())
    entry(out, "dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    entry(out, "TRAILER!!!", 0)
