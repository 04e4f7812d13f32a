#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Writes a C header defining "static const char NAME[]" with the bytes of a text file,
# so that a program carries its Varlink interface description without reading files.
import sys

src, dst, name = sys.argv[1:4]
with open(src, 'rb') as f:
    data = f.read()

def escape(line):
    out = []
    for b in line:
        c = chr(b)
        if c in '\\"':
            out.append('\\' + c)
        elif 0x20 <= b < 0x7f:
            out.append(c)
        else:
            out.append('\\%03o' % b)
    return ''.join(out)

with open(dst, 'w') as f:
    f.write('/* Generated from %s by embed-text.py. */\n#pragma once\n\n' % src.split('/')[-1])
    f.write('static const char %s[] =\n' % name)
    lines = data.splitlines(keepends=True) or [b'']
    f.write('\n'.join('        "%s"' % escape(l) for l in lines))
    f.write(';\n')
