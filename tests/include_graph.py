#!/usr/bin/python3
"""The shape of server/: no include circle between its modules, no file too long.

A module is a file pair (room.c + room.h, or a header alone); module A depends
on module B when room.c or room.h includes "b.h". A module split over several
files has a private header <m>_int.h: it and every <m>_<part>.c without a
header of its own belong to module m (store.c, store_batch.c, store_read.c,
store_writer.c and store_int.h are the module store). The modules must form a
layered graph: any circle (room -> outbox -> room) is reported with its path.
A .c file over MAX_LINES lines is reported too.

Usage: include_graph.py [SERVER_DIR]   (exit 1 on a violation; prints the layers)
"""
import os
import re
import sys

MAX_LINES = 800

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"', re.M)


def module_of(base, bases):
    """The module of a file by its name without extension: m for m_int (a
    private header) and for m_part when m_int.h exists and m_part.h does not."""
    if base.endswith("_int") and base[: -len("_int")] + ".h" in bases:
        return base[: -len("_int")]
    for i, ch in enumerate(base):
        if ch == "_" and base[:i] + "_int.h" in bases and base + ".h" not in bases:
            return base[:i]
    return base


def graph(server):
    names = sorted(os.listdir(server))
    bases = set(names)
    files = [n for n in names if n.endswith((".c", ".h"))]
    module = {os.path.splitext(n)[0]: module_of(os.path.splitext(n)[0], bases) for n in files}
    deps = {m: set() for m in module.values()}
    for n in files:
        m = module[os.path.splitext(n)[0]]
        with open(os.path.join(server, n), encoding="utf-8") as f:
            for inc in INCLUDE.findall(f.read()):
                if inc in module and module[inc] != m:
                    deps[m].add(module[inc])
    return deps


def cycles(deps):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(deps[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(deps):
        if v not in index:
            visit(v)
    return out


def layers(deps):
    """Each module's layer: 0 for a module that includes no other, else one
    more than the highest layer it includes (only for an acyclic graph)."""
    level = {}

    def of(m):
        if m not in level:
            level[m] = 0
            level[m] = 1 + max((of(d) for d in deps[m]), default=-1)
        return level[m]

    for m in deps:
        of(m)
    return level


def main():
    server = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "server")
    deps = graph(server)
    bad = 0
    for comp in cycles(deps):
        print("include circle: " + " <-> ".join(comp))
        bad = 1
    for n in sorted(os.listdir(server)):
        if n.endswith(".c"):
            with open(os.path.join(server, n), encoding="utf-8") as f:
                lines = sum(1 for _ in f)
            if lines > MAX_LINES:
                print(f"{n}: {lines} lines (at most {MAX_LINES})")
                bad = 1
    if not bad:
        level = layers(deps)
        for lv in range(max(level.values()) + 1):
            mods = sorted(m for m in level if level[m] == lv)
            print(f"layer {lv}: {' '.join(mods)}")
        print(f"{len(deps)} modules, no include circle")
    return bad


if __name__ == "__main__":
    sys.exit(main())
