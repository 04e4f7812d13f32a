#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Writes a C header defining "static const char NAME[]" with the bytes of a text file,
# so that a program carries its Varlink interface description without reading files.
#
# With --error-prefix PREFIX the file is read as a Varlink interface description, and
# the header also defines, for every "error Name (...)" of the interface, its full name:
#     #define PREFIX_NAME "org.example.Interface.Name"
# (Name in upper case, with an underscore between its words); --method-prefix does the
# same for every "method Name(...)", and --interface-define NAME defines NAME as the
# interface's name. So servers and clients spell these names once, in the interface file.
import argparse
import re
import sys

parser = argparse.ArgumentParser()
parser.add_argument('--error-prefix', help='define the full name of every error, prefixed with this')
parser.add_argument('--method-prefix', help='define the full name of every method, prefixed with this')
parser.add_argument('--interface-define', help='define the name of the interface as this')
parser.add_argument('src')
parser.add_argument('dst')
parser.add_argument('name')
args = parser.parse_args()

with open(args.src, 'rb') as f:
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

def macro_name(error):
    # NoKey -> NO_KEY, VersionMismatch -> VERSION_MISMATCH, HTTPError -> HTTP_ERROR
    return re.sub(r'(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])', '_', error).upper()

def name_defines(text, prefixes, interface_define):
    """The #defines for the declarations named in prefixes ({'error': 'X_ERROR_', ...})
    and, if interface_define is set, for the interface's name."""
    interface = None
    defines = {}
    for number, line in enumerate(text.splitlines(), 1):
        # Declarations start at the beginning of a line; members of a type or method
        # are indented (and one of them may well be called "error").
        m = re.match(r'interface\s+(\S+)', line)
        if m:
            if interface:
                sys.exit('%s:%d: a second interface line' % (args.src, number))
            interface = m.group(1)
            continue
        for keyword, prefix in prefixes.items():
            if not re.match(keyword + r'\s', line):
                continue
            m = re.match(keyword + r'\s+([A-Za-z][A-Za-z0-9]*)\s*\(', line)
            if not m:
                sys.exit('%s:%d: cannot read the %s: %s' % (args.src, number, keyword, line))
            if not interface:
                sys.exit('%s:%d: %s %s before the interface line' % (args.src, number, keyword, m.group(1)))
            macro = prefix + macro_name(m.group(1))
            if macro in defines:
                sys.exit('%s:%d: %s defined twice' % (args.src, number, macro))
            defines[macro] = '%s.%s' % (interface, m.group(1))
    if not interface:
        sys.exit('%s: no interface line' % args.src)
    if interface_define:
        defines = {interface_define: interface, **defines}
    return defines

prefixes = {}
if args.method_prefix is not None:
    prefixes['method'] = args.method_prefix
if args.error_prefix is not None:
    prefixes['error'] = args.error_prefix
defines = {}
if prefixes or args.interface_define:
    defines = name_defines(data.decode('utf-8'), prefixes, args.interface_define)

with open(args.dst, 'w') as f:
    f.write('/* Generated from %s by embed-text.py. */\n#pragma once\n\n' % args.src.split('/')[-1])
    for macro, value in defines.items():
        f.write('#define %s "%s"\n' % (macro, value))
    if defines:
        f.write('\n')
    f.write('static const char %s[] =\n' % args.name)
    lines = data.splitlines(keepends=True) or [b'']
    f.write('\n'.join('        "%s"' % escape(l) for l in lines))
    f.write(';\n')
