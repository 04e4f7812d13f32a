#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The test of check-includes.py: small trees in a temporary directory, one fault each,
which it must find (and a clean one it must pass)."""
import os
import subprocess
import sys
import tempfile

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'check-includes.py')

CLEAN = {
    'lib/basic/macro.h': '',
    'lib/basic/log.h': '#include "macro.h"\n',
    'lib/basic/log.c': '#include <stdio.h>\n#include "log.h"\n#include "config.h"\n',
    'lib/varlink/json-util.h': '#include "macro.h"\n',
    'lib/varlink/json-util.c': '#include "json-util.h"\n#include "log.h"\n',
    'lib/daemon/server.c': '#include "json-util.h"\n',
    'lib/mapreduce/groups.c': '#include "mrkv/app.h"\n#include "log.h"\n',
    'include/mrkv/app.h': '',
    'daemons/a/bus.h': '', 'daemons/a/bus.c': '#include "bus.h"\n#include "server.h"\n',
    'daemons/b/bus.h': '', 'daemons/b/bus.c': '#include "bus.h"\n',
    'lib/daemon/server.h': '#include "json-util.h"\n',
    # A build directory is not part of the tree, whatever it holds.
    'build/meson-private/x.h': '', 'build/x.c': '#include "y.h"\n', 'build/y.h': '#include "x.h"\n',
}

# Each fault: the files added to CLEAN, and what the message must say.
FAULTS = {
    'module circle': ({
        'daemons/a/one.h': '', 'daemons/a/one.c': '#include "one.h"\n#include "two.h"\n',
        'daemons/a/two.h': '', 'daemons/a/two.c': '#include "two.h"\n#include "three.h"\n',
        'daemons/a/three.h': '#include "one.h"\n',
    }, 'circle between modules: daemons/a/one -> daemons/a/two -> daemons/a/three -> daemons/a/one'),
    'header circle': ({
        'lib/basic/p.h': '#include "q.h"\n', 'lib/basic/q.h': '#include "p.h"\n',
    }, 'circle between modules: lib/basic/p -> lib/basic/q -> lib/basic/p'),
    'directory circle': ({
        'apps/x/x.c': '#include "y.h"\n', 'apps/y/y.h': '', 'apps/y/y.c': '#include "z.h"\n',
        'apps/x/z.h': '',
    }, 'circle between directories: apps/x -> apps/y -> apps/x'),
    'basic above varlink': ({
        'lib/basic/strv.h': '#include "json-util.h"\n',
    }, 'lib/basic/strv.h: includes lib/varlink/json-util.h'),
    'varlink above daemon': ({
        'lib/varlink/client.c': '#include "server.h"\n',
    }, 'lib/varlink/client.c: includes lib/daemon/server.h'),
    'lib includes a daemon': ({
        'lib/mapreduce/arena.c': '#include "daemons/a/bus.h"\n',
    }, 'lib/mapreduce/arena.c: includes daemons/a/bus.h'),
    'public header includes lib': ({
        'include/mrkv/kv.h': '#include "macro.h"\n',
    }, 'include/mrkv/kv.h: includes lib/basic/macro.h'),
    'ambiguous': ({
        'apps/c/c.c': '#include "bus.h"\n',
    }, 'apps/c/c.c: #include "bus.h" is ambiguous'),
}


def make_tree(root, files):
    for path, text in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, 'w') as f:
            f.write(text)


def run(files):
    with tempfile.TemporaryDirectory(prefix='mrkv-check-includes-') as root:
        make_tree(root, files)
        p = subprocess.run([sys.executable, CHECKER, root], capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr


def main():
    failed = 0
    status, out = run(CLEAN)
    if status != 0:
        print('FAIL: the clean tree was refused:\n' + out)
        failed += 1
    for name, (extra, message) in FAULTS.items():
        status, out = run({**CLEAN, **extra})
        if status != 1 or message not in out:
            print('FAIL: %s: exit status %d, expected 1 and "%s" in:\n%s' % (name, status, message, out))
            failed += 1
        else:
            print('ok: %s' % name)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
