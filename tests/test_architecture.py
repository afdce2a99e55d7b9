"""The shape of the house (DESIGN.md), checked from the source's own imports.

Every ``import`` in ``src/takeoff`` is read (those inside functions and under
``TYPE_CHECKING`` too: they are dependencies all the same). A *package* is a first-level
name under ``takeoff`` (``takeoff.data.schema`` belongs to ``data``; ``takeoff.api`` is its
own). The flow is one way: no two packages import each other, directly or round a longer
circle; no module takes a private name (``_x``) from another package; no module is past
800 lines.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "takeoff"
MAX_LINES = 800


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(("takeoff", *parts))] = path
    return out


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "takeoff"


def _imports(module: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names if alias.name.startswith("takeoff")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target == "takeoff":  # `from takeoff import bundle, registry`: modules by name
                found += [(f"takeoff.{alias.name}", [], node.lineno) for alias in node.names]
            elif target.startswith("takeoff"):
                found.append((target, [alias.name for alias in node.names], node.lineno))
    return found


def _graph():
    modules = _modules()
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    private: list[str] = []
    for module, path in modules.items():
        here = _package(module)
        for target, names, line in _imports(module, path):
            there = _package(target)
            if there == here:
                continue
            where = f"{path.relative_to(SRC.parent)}:{line}"
            edges[here][there].append(where)
            private += [f"{where} takes {name!r} from {target}" for name in names
                        if name.startswith("_") and not name.startswith("__")]
    return edges, private


def _circles(edges: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Strongly connected groups of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(set(edges) | {t for targets in edges.values() for t in targets}):
        if node not in index:
            visit(node)
    return groups


def test_no_circle_between_packages():
    edges, _ = _graph()
    circles = _circles(edges)
    described = []
    for group in circles:
        ties = [f"{a} -> {b} ({edges[a][b][0]})" for a in group for b in group if b in edges.get(a, {})]
        described.append(", ".join(group) + ": " + "; ".join(ties))
    assert not circles, "packages that import each other:\n" + "\n".join(described)


def test_no_private_name_crosses_a_package():
    _, private = _graph()
    assert not private, "private names taken from another package:\n" + "\n".join(private)


def test_lower_layers_never_import_upper_ones():
    """data, features, models, training and evaluation know nothing of pipelines, serving,
    compression, explain, the façade or the CLI (DESIGN.md's one-way flow)."""
    edges, _ = _graph()
    lower = {"data", "features", "models", "training", "evaluation", "errors", "bundle", "registry"}
    upper = {"pipelines", "api", "cli", "serving", "compression", "explain", "tuning", "tracking", "mlflow"}
    wrong = [f"{a} -> {b} ({edges[a][b][0]})" for a in sorted(lower) for b in sorted(upper) if b in edges.get(a, {})]
    assert not wrong, "a lower layer imports an upper one:\n" + "\n".join(wrong)
    assert "models" not in edges.get("training", {}), f"training imports a family: {edges['training']['models'][0]}"


def test_no_module_past_800_lines():
    long = [f"{path.relative_to(SRC.parent)}: {n}" for path in SRC.rglob("*.py")
            if (n := len(path.read_text().splitlines())) > MAX_LINES]
    assert not long, "modules to split:\n" + "\n".join(long)


def test_the_check_sees_a_circle():
    """The walker itself: a made-up circle and a private import are found."""
    edges = {"a": {"b": ["x.py:1"]}, "b": {"c": ["y.py:2"]}, "c": {"a": ["z.py:3"]}, "d": {"a": ["w.py:4"]}}
    assert _circles(edges) == [["a", "b", "c"]]
    assert _package("takeoff.data.schema") == "data" and _package("takeoff.api") == "api"
