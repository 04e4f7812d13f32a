#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""varlink-call.py [--timeout SEC] ADDRESS METHOD [PARAMETERS-JSON]

Calls METHOD once over ADDRESS (unix:/path or tcp:host:port) and prints the reply
object as JSON. Exit status: 0 on a reply, 1 on an error reply, 2 on a usage or
connection error or a time-out. There is no varlinkctl before systemd 255; this is
the raw protocol: a JSON object and a NUL byte each way.
"""
import json
import socket
import sys


def connect(address, timeout):
    if address.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(address[5:])
        return s
    if address.startswith("tcp:"):
        host, _, port = address[4:].rpartition(":")
        return socket.create_connection((host.strip("[]"), int(port)), timeout)
    raise ValueError("expected unix:/path or tcp:host:port, got " + address)


def main(argv):
    timeout = 10.0
    if len(argv) >= 2 and argv[0] == "--timeout":
        timeout = float(argv[1])
        argv = argv[2:]
    if len(argv) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    address, method = argv[0], argv[1]
    parameters = json.loads(argv[2]) if len(argv) == 3 else {}
    try:
        s = connect(address, timeout)
        s.sendall(json.dumps({"method": method, "parameters": parameters}).encode() + b"\0")
        data = b""
        while b"\0" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before a reply")
            data += chunk
        s.close()
    except (OSError, ValueError) as e:
        print("varlink-call: %s: %s" % (address, e), file=sys.stderr)
        return 2
    reply = json.loads(data[: data.index(b"\0")])
    print(json.dumps(reply))
    return 1 if "error" in reply else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
