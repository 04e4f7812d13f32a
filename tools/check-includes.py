#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks the #include "..." graph of the C sources under ROOT (default: the checkout
this script is in) and exits 1 with a message for each fault:

  - a circle between modules: foo.c and foo.h in one directory are one module, and a
    module that includes another is above it; no module may be above itself;
  - a circle between directories (each directory is one library or program);
  - a file that includes a header of a layer above its own (LAYERS below), e.g. lib/basic
    including lib/varlink, or anything in lib/ including a header of daemons/ or apps/;
  - an include that names two files of the tree and neither in the includer's directory.

Headers found nowhere in the tree (system headers, those the build generates such as
config.h and org.mrkv.KV.varlink.h) are not part of the graph. Build directories (those
holding meson-private/) and hidden directories are skipped.
"""
import argparse
import os
import re
import sys

# What the files under each directory may include, by directory prefix. A directory not
# named here (daemons/*, apps/*, tests/*, bench/*) may include any of these layers.
LAYERS = {
    'include/mrkv': ['include/mrkv'],
    'lib/basic': ['lib/basic'],
    'lib/varlink': ['lib/basic', 'lib/varlink'],
    'lib/state': ['lib/basic', 'lib/state'],
    'lib/daemon': ['lib/basic', 'lib/varlink', 'lib/daemon'],
    'lib/mapreduce': ['lib/basic', 'lib/mapreduce', 'include/mrkv'],
    'libclient': ['lib/basic', 'lib/varlink', 'libclient', 'include/mrkv'],
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def under(path, prefix):
    return path == prefix or path.startswith(prefix + '/')


def layer_of(path):
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if under(path, prefix):
            return prefix
    return None


def source_files(root):
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith('.')
                             and not os.path.isdir(os.path.join(dirpath, d, 'meson-private')))
        for f in filenames:
            if f.endswith(('.c', '.h')):
                files.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(files)


def resolve(name, includer, files, by_suffix, errors):
    """The file of the tree that #include "name" in includer means, or None."""
    local = os.path.normpath(os.path.join(os.path.dirname(includer), name))
    if local in files:
        return local
    found = by_suffix.get(name, [])
    if len(found) > 1:
        errors.append('%s: #include "%s" is ambiguous: %s' % (includer, name, ', '.join(found)))
        return None
    return found[0] if found else None


def module_of(path):
    return os.path.splitext(path)[0]


def find_cycles(graph):
    """Tarjan's strongly connected components with more than one node, each as a cycle."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]

    def strongconnect(v):
        # Iterative, so deep graphs cannot hit Python's recursion limit.
        work = [(v, iter(sorted(graph.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == node:
                            break
                    if len(component) > 1:
                        cycles.append(cycle_in(graph, set(component)))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return cycles


def cycle_in(graph, component):
    """One circle through the component, as a list of nodes from the smallest back to it."""
    start = min(component)
    parent = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ())):
            if w == start:
                path = [v]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return list(reversed(path)) + [start]
            if w in component and w not in parent:
                parent[w] = v
                queue.append(w)
    return sorted(component)


def check(root):
    files = source_files(root)
    file_set = set(files)
    by_suffix = {}
    for f in files:
        parts = f.split('/')
        for i in range(len(parts)):
            by_suffix.setdefault('/'.join(parts[i:]), []).append(f)

    errors = []
    modules, directories = {}, {}
    n_edges = 0
    for f in files:
        with open(os.path.join(root, f), encoding='utf-8', errors='replace') as fh:
            text = fh.read()
        modules.setdefault(module_of(f), set())
        for name in INCLUDE.findall(text):
            target = resolve(name, f, file_set, by_suffix, errors)
            if not target:
                continue
            n_edges += 1
            if module_of(target) != module_of(f):
                modules[module_of(f)].add(module_of(target))
            d_from, d_to = os.path.dirname(f), os.path.dirname(target)
            if d_from != d_to:
                directories.setdefault(d_from, set()).add(d_to)
            layer = layer_of(f)
            if layer and not any(under(target, allowed) for allowed in LAYERS[layer]):
                errors.append('%s: includes %s, which %s may not (it may include %s)' %
                              (f, target, layer, ', '.join(LAYERS[layer])))

    for cycle in find_cycles(modules):
        errors.append('include circle between modules: ' + ' -> '.join(cycle))
    for cycle in find_cycles(directories):
        errors.append('include circle between directories: ' + ' -> '.join(cycle))
    return errors, len(files), n_edges


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('root', nargs='?',
                        default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = parser.parse_args()

    errors, n_files, n_edges = check(args.root)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print('%d include fault(s) in %d files.' % (len(errors), n_files), file=sys.stderr)
        return 1
    print('%d files, %d includes of the tree: no circle, every layer in order.' % (n_files, n_edges))
    return 0


if __name__ == '__main__':
    sys.exit(main())
