#!/usr/bin/env python3
"""Fails on an import cycle between modules, or an import that points up.

Reads every `crate::…` and `super::…` path in `src/` (the library) and
`views/src/`, as text: `use` lines, groups `{…}` and paths in code alike,
leaving out comments, strings and `#[cfg(test)]` modules. A module is a
file. Two rules:

- no cycle between modules (in either crate);
- in `src/`, a module imports only modules of its own layer folder or of a
  lower layer, as `LAYERS` below declares (bottom first). Two folders on
  the same line are siblings that may not import each other.

Run from anywhere: `python3 scripts/check-layers.py`; exit status 1 and one
line per finding when the structure is broken.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The library's layers, bottom first: a module may import its own top-level
# module and anything on an earlier line, nothing later.
LAYERS = [
    ["error", "clock", "shutdown", "simulate"],
    ["store"],
    ["ingest"],
    ["query"],
    ["replay"],
    ["time_travel"],
    ["serve"],
    ["project"],
    ["cli"],
]

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(text):
    """The code of a file without comments, string/char literals and
    `#[cfg(test)]` items (their braces matched)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:]) and not re.match(r"[A-Za-z0-9_]", text[i - 1 : i] or " "):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            i = n if j < 0 else j + len(end)
            out.append('""')
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:]):
            i += len(re.match(r"'(\\.[^']*|[^\\'])'", text[i:]).group(0))
            out.append("' '")
        else:
            out.append(c)
            i += 1
    code = "".join(out)
    # Drop `#[cfg(test)]` items: tests may import what they test.
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{", code)
        if not m:
            break
        depth, j = 0, m.end() - 1
        while j < len(code):
            if code[j] == "{":
                depth += 1
            elif code[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        code = code[: m.start()] + code[j + 1 :]
    return code


def use_paths(code, root):
    """Every path after `root::` (`crate` or `super`), as lists of names,
    with `{…}` groups expanded."""
    paths = []

    def tree(s, i, prefix):
        # Parses a use tree at s[i:]; appends paths; returns the end index.
        i = skip(s, i)
        if s.startswith("{", i):
            i += 1
            while True:
                i = skip(s, i)
                if s.startswith("}", i):
                    return i + 1
                i = tree(s, i, prefix)
                i = skip(s, i)
                if s.startswith(",", i):
                    i += 1
        m = re.match(IDENT + r"|\*", s[i:])
        if not m:
            paths.append(prefix)
            return i
        name = m.group(0)
        i += len(name)
        if s.startswith("::", skip(s, i)):
            return tree(s, skip(s, i) + 2, prefix + [name])
        paths.append(prefix + [name])
        return i

    for m in re.finditer(r"(?<![A-Za-z0-9_$])" + root + r"\s*::", code):
        tree(code, m.end(), [])
    return paths


def skip(s, i):
    while i < len(s) and s[i].isspace():
        i += 1
    return i


def modules(src):
    """Module path (tuple) of every file under `src`, the crate root as ()."""
    mods = {}
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "mod":
            parts = parts[:-1]
        if parts in (["lib"], ["main"]):
            parts = []
        mods[tuple(parts)] = f
    return mods


def reexports(code):
    """`pub use a::b::Name` at a module's top: name -> target path."""
    out = {}
    for p in use_paths("".join(re.findall(r"pub\s+use\s+(crate\s*::[^;]*);", code)), "crate"):
        if p:
            out[p[-1]] = p
    return out


def resolve(path, mods):
    """The longest module prefix of `path` that is a file of the crate."""
    for k in range(len(path), 0, -1):
        if tuple(path[:k]) in mods:
            return tuple(path[:k])
    return None


def graph(src, skip_dirs=()):
    mods = {m: f for m, f in modules(src).items() if not (m and m[0] in skip_dirs)}
    codes = {m: strip(f.read_text()) for m, f in mods.items()}
    root_exports = reexports(codes.get((), ""))
    edges = {m: set() for m in mods}
    for m, code in codes.items():
        if m == ():
            continue  # the crate root declares modules and re-exports them
        found = use_paths(code, "crate")
        # `super` of `a::b` (`a/b.rs` or `a/b/mod.rs`) is `a`.
        found += [list(m[:-1]) + p for p in use_paths(code, "super")]
        for p in found:
            t = resolve(p, mods)
            if t is None and p and p[0] in root_exports:
                t = resolve(root_exports[p[0]], mods)
            if t is None or t == m or t == ():
                continue
            edges[m].add(t)
    return mods, edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
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
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def name(m):
    return "::".join(m) or "crate"


def main():
    problems = []
    rank = {top: r for r, line in enumerate(LAYERS) for top in line}
    for crate, src, skip_dirs in [
        ("sundial", ROOT / "src", ("bench",)),
        ("sundial-views", ROOT / "views" / "src", ()),
    ]:
        mods, edges = graph(src, skip_dirs)
        for comp in cycles(edges):
            ring = [name(m) for m in comp]
            problems.append(f"{crate}: import cycle between {', '.join(ring)}")
        if crate != "sundial":
            continue
        for m in mods:
            if m and m[0] not in rank:
                problems.append(f"sundial: module `{m[0]}` has no layer in scripts/check-layers.py")
        for m, targets in sorted(edges.items()):
            if not m or m[0] not in rank:
                continue
            for t in sorted(targets):
                if t[0] == m[0] or t[0] not in rank:
                    continue
                if rank[t[0]] > rank[m[0]]:
                    problems.append(f"sundial: {name(m)} imports {name(t)}, a higher layer")
                elif rank[t[0]] == rank[m[0]]:
                    problems.append(f"sundial: {name(m)} imports {name(t)}, a sibling layer")
    for p in problems:
        print(p)
    if problems:
        print(f"check-layers: {len(problems)} problem(s); the layers are declared in scripts/check-layers.py")
        return 1
    print("check-layers: no import cycle, no upward import")
    return 0


if __name__ == "__main__":
    sys.exit(main())
