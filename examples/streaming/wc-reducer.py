#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Word count, the reducer of an mrkv streaming job.

Reads "word<TAB>count" lines sorted by word on stdin and writes "word total" for every
word, the wc plugin's output lines.
"""
import sys

out = sys.stdout.buffer
current, total = None, 0
for line in sys.stdin.buffer:
    word, _, count = line.rstrip(b"\n").partition(b"\t")
    if word != current:
        if current is not None:
            out.write(b"%s %d\n" % (current, total))
        current, total = word, 0
    total += int(count)
if current is not None:
    out.write(b"%s %d\n" % (current, total))
