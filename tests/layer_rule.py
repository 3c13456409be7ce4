"""The layer rule of the package, checked on the source text (no import is executed).

Layers, lowest first (a module may import its own layer and the layers below it)::

    0  spkpeft.errors, spkpeft.textfile, spkpeft.registry, spkpeft.config
    1  spkpeft.io, spkpeft.data
    2  spkpeft.upstream
    3  spkpeft.peft
    4  spkpeft.nn, spkpeft.engine, spkpeft.eval
    5  spkpeft.tasks
    6  spkpeft.inference
    7  spkpeft.bin
    8  spkpeft (the root package: the facade whose ``load`` imports spkpeft.inference on first use)

Every ``import`` / ``from ... import`` in a file counts, including those inside functions.
Besides the layers, the module graph must have no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

LAYERS: list[tuple[str, ...]] = [
    ("spkpeft.errors", "spkpeft.textfile", "spkpeft.registry", "spkpeft.config"),
    ("spkpeft.io", "spkpeft.data"),
    ("spkpeft.upstream",),
    ("spkpeft.peft",),
    ("spkpeft.nn", "spkpeft.engine", "spkpeft.eval"),
    ("spkpeft.tasks",),
    ("spkpeft.inference",),
    ("spkpeft.bin",),
    ("spkpeft",),
]


def layer_of(module: str) -> int:
    """The layer of ``module``: that of its longest listed prefix."""
    best, best_len = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    if best is None:
        raise ValueError(f"module {module} belongs to no layer")
    return best


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, module: str, is_package: bool) -> list[tuple[tuple[str, ...], int]]:
    """``(candidates, line)`` of every imported name: ``from pkg import x`` imports the module
    ``pkg.x`` when there is one, else (a name defined in) ``pkg``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[tuple[str, ...], int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [((alias.name,), node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found += [((f"{base}.{alias.name}", base), node.lineno) for alias in node.names]
    return [(names, line) for names, line in found if names[-1] == "spkpeft" or names[-1].startswith("spkpeft.")]


def import_graph(root: Path) -> dict[str, list[tuple[str, int, Path]]]:
    """``module -> [(imported module, line, file)]`` for every module of the package at ``root``."""
    files = {module_name(root, p): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, list[tuple[str, int, Path]]] = {}
    for module, path in files.items():
        edges = []
        for names, line in imports_of(path, module, path.name == "__init__.py"):
            name = next((n for n in names if n in files), names[-1])
            while name not in files and "." in name:  # `import pkg.mod.attr`-style names: the module
                name = name.rsplit(".", 1)[0]
            if name in files and name != module and (name, line, path) not in edges:
                edges.append((name, line, path))
        graph[module] = edges
    return graph


def upward_imports(root: Path) -> list[str]:
    """One line per import of a higher layer: ``file:line: a (layer i) imports b (layer j)``."""
    problems = []
    for module, edges in import_graph(root).items():
        for target, line, path in edges:
            if layer_of(target) > layer_of(module):
                problems.append(f"{path}:{line}: {module} (layer {layer_of(module)}) imports {target} "
                                f"(layer {layer_of(target)})")
    return problems


def cycles(root: Path) -> list[list[str]]:
    """The import cycles (strongly connected components of more than one module), sorted."""
    graph = {m: sorted({t for t, _, _ in edges}) for m, edges in import_graph(root).items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, []):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)
