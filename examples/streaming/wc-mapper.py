#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Word count, the mapper of an mrkv streaming job.

Reads the lines of its split on stdin and writes "word<TAB>1" for every word, a word
being a maximal run of ASCII letters, as the wc plugin counts them (bytes, not text:
any encoding, any locale).
"""
import re
import sys

WORD = re.compile(rb"[A-Za-z]+")

out = sys.stdout.buffer
for line in sys.stdin.buffer:
    for word in WORD.findall(line):
        out.write(word + b"\t1\n")
