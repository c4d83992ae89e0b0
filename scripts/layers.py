#!/usr/bin/python3
"""layers.py - mxgate's layers, enforced on every #include "..." (make check runs it).

Each file may include files of its own module and of the layers below its own;
modules of one rank may not include each other unless the edge is listed in
ALLOWED. Include cycles between files are refused too. Exit status 1 and one
"FILE:LINE: message" per violation; 0 and a one-line summary otherwise.

    /usr/bin/python3 scripts/layers.py [ROOT]
"""

import os
import re
import sys

# From the bottom up. A module is a directory under src/; "top" is the wiring:
# src/main.c, src/modules.[ch] (the one list of configuration sections) and tools/.
LAYERS = [
    ["core"],                          # config assembly, log, pool, CIDR, fs, privileges
    ["dns", "tls", "store", "mail"],   # c-ares; OpenSSL; LMDB; addresses and headers
    ["relay", "auth"],                 # SMTP/LMTP client, routes; users, SASL, credentials
    ["queue"],                         # spool, group commit, scheduler, delivery, DSN
    ["policy"],                        # pipeline and one file per check
    ["policysrv"],                     # Postfix's policy delegation protocol on the checks
    ["smtp", "admin"],                 # the SMTP server; the control socket
    ["top"],                           # src/main.c, src/modules.c, tools/
]

# Edges between modules of the same rank that are allowed: (from, to). None yet:
# dns, tls, store and mail stand alone; smtp and admin do not know each other.
ALLOWED = set()

RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def module_of(rel):
    """The module of a path relative to the repository root, or None (not layered)."""
    parts = rel.split("/")
    if parts[0] == "tools":
        return "top"
    if parts[0] != "src":
        return None
    if len(parts) == 2:  # src/main.c, src/modules.[ch]
        return "top"
    return parts[1]


def sources(root):
    for top in ("src", "tools"):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, f), root)


def resolve(root, rel, target):
    """The file an include names: next to the includer, else under src/."""
    for base in (os.path.dirname(rel), "src"):
        cand = os.path.normpath(os.path.join(base, target))
        if os.path.isfile(os.path.join(root, cand)):
            return cand
        if os.path.isfile(os.path.join(root, cand + ".in")):  # CMake generates it (version.h)
            return cand + ".in"
    return None


def check_edge(rel, line, target, dep, errors):
    src_mod, dst_mod = module_of(rel), module_of(dep)
    if src_mod is None or dst_mod is None or src_mod == dst_mod:
        return
    for m in (src_mod, dst_mod):
        if m not in RANK:
            errors.append("%s:%d: module %s is in no layer (add it to LAYERS in %s)"
                          % (rel, line, m, os.path.relpath(__file__)))
            return
    if RANK[dst_mod] > RANK[src_mod]:
        errors.append('%s:%d: #include "%s": %s may not include %s (a higher layer)'
                      % (rel, line, target, src_mod, dst_mod))
    elif RANK[dst_mod] == RANK[src_mod] and (src_mod, dst_mod) not in ALLOWED:
        errors.append('%s:%d: #include "%s": %s may not include %s (same layer, edge not allowed)'
                      % (rel, line, target, src_mod, dst_mod))


def find_cycles(graph):
    """Every include cycle once, as a list of files (iterative DFS, colours)."""
    colour, cycles, seen = {}, [], set()
    for start in sorted(graph):
        if colour.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
                continue
            if colour.get(nxt) == 1:
                cyc = path[path.index(nxt):]
                key = frozenset(cyc)
                if key not in seen:
                    seen.add(key)
                    cycles.append(cyc + [nxt])
            elif not colour.get(nxt):
                colour[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(sorted(graph.get(nxt, ())))))
    return cycles


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    root = os.path.abspath(root)
    errors, graph, lines, nfiles, nincludes = [], {}, {}, 0, 0
    for rel in sources(root):
        nfiles += 1
        graph.setdefault(rel, set())
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            for n, text in enumerate(f, 1):
                m = INCLUDE.match(text)
                if not m:
                    continue
                nincludes += 1
                dep = resolve(root, rel, m.group(1))
                if dep is None:
                    errors.append('%s:%d: #include "%s": no such file in the tree'
                                  % (rel, n, m.group(1)))
                    continue
                graph[rel].add(dep)
                lines.setdefault((rel, dep), n)
                check_edge(rel, n, m.group(1), dep, errors)
    for cyc in find_cycles(graph):
        errors.append("%s:%d: include cycle: %s"
                      % (cyc[0], lines[(cyc[0], cyc[1])], " -> ".join(cyc)))
    for e in errors:
        print(e)
    if errors:
        print("layers: %d violation(s)" % len(errors), file=sys.stderr)
        return 1
    print("layers: %d files, %d includes, no upward or cross-layer include, no cycle"
          % (nfiles, nincludes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
