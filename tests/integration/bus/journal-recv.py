#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# journal-recv.py SOCKET OUTPUT: stands in for journald's native socket. Binds a datagram
# socket at SOCKET and appends each message received to OUTPUT as its "FIELD=value"
# lines and an empty line (fields in the binary form, with a newline in the value, are
# written as FIELD=<binary>).
import socket
import struct
import sys

sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
with open(sys.argv[2], 'ab', buffering=0) as out:
    while True:
        data = sock.recv(1 << 20)
        fields = []
        while data:
            line, sep, rest = data.partition(b'\n')
            if b'=' in line or not sep:
                fields.append(line)
                data = rest
            else:  # NAME\n, 64-bit little-endian length, value, \n
                size = struct.unpack('<Q', rest[:8])[0]
                fields.append(line + b'=<binary>')
                data = rest[8 + size + 1:]
        out.write(b'\n'.join(fields) + b'\n\n')
