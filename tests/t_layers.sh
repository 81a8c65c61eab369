#!/usr/bin/env bash
# The library's include rule (README "Architecture"): lib/ is layered
#   base -> io, text, obs -> engine -> cli -> sweep -> judge -> tools
# and a file may include headers of its own folder or of a folder strictly below it
# (siblings on one floor do not include each other). The module graph (a .c and its .h
# are one module) has no cycles. Both are checked here, from the sources.
set -u
root=${XL_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
python3 - "$root" <<'PY'
import os, re, sys
root = sys.argv[1]
# floor of each top folder of lib/ (a subfolder belongs to its top folder)
floor = {"base": 0, "io": 1, "text": 1, "obs": 1, "engine": 2, "cli": 3, "sweep": 4, "judge": 5, "tools": 6}
inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
files = []
for top in ("lib", "tools"):
    for d, _, names in os.walk(os.path.join(root, top)):
        files += [os.path.join(d, n) for n in names if n.endswith((".c", ".h", ".cu", ".cuh"))]
def folder(rel):          # "lib/engine/cuda/x.cu" -> "engine"; "tools/x.c" -> "tools"
    parts = rel.split("/")
    return parts[1] if parts[0] == "lib" else parts[0]
def module(rel):
    return os.path.splitext(rel)[0]
bad, edges, checked = [], {}, 0
for f in sorted(files):
    rel = os.path.relpath(f, root)
    src_folder = folder(rel)
    if src_folder not in floor:
        bad.append(f"{rel}: folder '{src_folder}' has no floor in the include rule (add it to tests/t_layers.sh and the README)")
        continue
    text = open(f, encoding="utf-8", errors="replace").read()
    for h in inc.findall(text):
        cand = [os.path.join(os.path.dirname(rel), h), os.path.join("lib", h)]
        target = next((c for c in cand if os.path.exists(os.path.join(root, c))), None)
        if target is None:
            continue   # a system or generated header
        target = os.path.normpath(target)
        checked += 1
        tf = folder(target)
        if tf != src_folder and floor.get(tf, 99) >= floor[src_folder]:
            bad.append(f"{rel} includes {h}: {tf}/ is not below {src_folder}/")
        a, b = module(rel), module(target)
        if a != b:
            edges.setdefault(a, set()).add(b)
# cycles in the module graph (depth-first search, reporting each cycle once)
state, stack, cycles = {}, [], set()
def dfs(u):
    state[u] = 1; stack.append(u)
    for v in sorted(edges.get(u, ())):
        if state.get(v) == 1:
            cyc = stack[stack.index(v):]
            i = cyc.index(min(cyc)); cycles.add(" -> ".join(cyc[i:] + cyc[:i] + [min(cyc)]))
        elif v not in state:
            dfs(v)
    stack.pop(); state[u] = 2
sys.setrecursionlimit(10000)
for u in sorted(edges):
    if u not in state:
        dfs(u)
print(f"ok - {checked} includes of {len(files)} files read" if checked > 50 else f"not ok - only {checked} includes found (is the tree there?)")
for b in bad:
    print("not ok - include against the rule: " + b)
if not bad:
    print("ok - every include points to its own folder or one below")
for c in sorted(cycles):
    print("not ok - include cycle: " + c)
if not cycles:
    print("ok - the module include graph has no cycles")
PY
