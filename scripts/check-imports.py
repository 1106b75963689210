#!/usr/bin/env python3
"""Checks that the modules of the `herd` crate (src/) import each other without a cycle.

A module is a file under src/ (a directory's mod.rs is the directory). A reference is any
`crate::a::b` path or `super::` path in its code (comments excluded); it names the longest
existing module prefix. Children may name their parent's items only if the parent does not name
them back. Prints the graph with --print; exits 1 and names a cycle if there is one.
"""
import pathlib, re, sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "src"

def module_of(path: pathlib.Path) -> tuple:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod":
        parts.pop()
    if parts in (["lib"], ["main"]) or parts[:1] == ["bin"]:
        return None
    return tuple(parts)

modules = {}
for f in sorted(ROOT.rglob("*.rs")):
    m = module_of(f)
    if m is not None:
        modules[m] = f

def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())

def resolve(path: list) -> tuple:
    best = None
    for i in range(1, len(path) + 1):
        if tuple(path[:i]) in modules:
            best = tuple(path[:i])
    return best

edges = {m: set() for m in modules}
for m, f in modules.items():
    text = strip_comments(f.read_text())
    # `mod tests { ... }` blocks may use anything of their parent.
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
    refs = []
    for mt in re.finditer(r"\bcrate((?:::[A-Za-z_][A-Za-z0-9_]*)+)", text):
        if text.startswith("::{", mt.end()):
            continue  # a group: its items are read below
        refs.append(mt.group(1).strip(":").split("::"))
    for p in re.findall(r"\bsuper((?:::[A-Za-z_][A-Za-z0-9_]*)+)", text):
        base = list(m[:-1]) if modules[m].name != "mod.rs" else list(m[:-1])
        refs.append(base + p.strip(":").split("::"))
    # `use a::{b, c}` inside `crate::x::{...}` groups: expand one level.
    for head, group in re.findall(r"\bcrate((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^}]*)\}", text):
        for item in group.split(","):
            item = item.strip().split(" ")[0]
            if item and item != "self":
                refs.append(head.strip(":").split("::") + item.split("::"))
    # A parent naming its children by relative path (`child::Item`, `use child::Item`, and
    # re-exports too: a module that re-exports its child depends on it, so the child must not
    # depend on it back). Only `mod child;` declarations are not dependencies.
    if f.name == "mod.rs":
        children = [c for c in modules if len(c) == len(m) + 1 and c[: len(m)] == m]
        body = "\n".join(
            l for l in text.splitlines()
            if not re.match(r"\s*(pub(\([a-z]+\))?\s+)?mod\b", l)
        )
        for c in children:
            if re.search(r"(?<![:\w])" + c[-1] + r"::", body):
                refs.append(list(c))
    for r in refs:
        target = resolve(r)
        # A module naming its own ancestors' items is fine as long as no cycle results.
        if target and target != m:
            edges[m].add(target)

if "--print" in sys.argv:
    for m in sorted(edges):
        print("::".join(m), "->", ", ".join(sorted("::".join(t) for t in edges[m])))

# Cycle search (a parent module declaring its children is not an import).
state, stack = {}, []
def visit(m):
    state[m] = 1
    stack.append(m)
    for t in sorted(edges[m]):
        if state.get(t) == 1:
            cyc = stack[stack.index(t):] + [t]
            print("import cycle: " + " -> ".join("::".join(x) for x in cyc))
            sys.exit(1)
        if t not in state:
            visit(t)
    stack.pop()
    state[m] = 2

for m in sorted(edges):
    if m not in state:
        visit(m)
print(f"imports: {len(modules)} modules of src/, no cycle")
