#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""notify-recv.py PATH: a $NOTIFY_SOCKET for a daemon run without systemd.

Binds an AF_UNIX datagram socket at PATH and prints every field of every message
it receives (READY=1, STATUS=..., STOPPING=1, ...) on a line of its own, then a
line "--", flushing each time, until SIGTERM. socat cannot do this: it prints
nothing for UNIX-RECV datagrams (docs/testing.md, activation without any manager).
"""
import os
import signal
import socket
import sys


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = sys.argv[1]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    # Bind under a temporary name and rename, so that the path appears only once
    # it is ready to receive: callers wait for it to exist.
    tmp = path + ".tmp"
    s.bind(tmp)
    os.rename(tmp, path)
    try:
        while True:
            data = s.recv(65536)
            for field in data.decode(errors="replace").split("\n"):
                if field:
                    print(field)
            print("--", flush=True)
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    sys.exit(main())
