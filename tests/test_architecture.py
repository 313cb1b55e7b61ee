"""The package's shape, as a newcomer relies on it: small modules, no import cycle, and
evaluators that never import the agent (README, docs/pages/reference/code-layout.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where each installed package's modules live (pyproject.toml's package-dir)
PACKAGES = {"edas_agent": ROOT / "agent", "edas_agent.evaluators": ROOT / "evaluators"}
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `path` imports when it loads (module level, TYPE_CHECKING
    blocks included: a cycle there is a cycle for type checkers)."""
    tree = ast.parse(path.read_text())
    statements = []
    for node in tree.body:
        statements += node.body if isinstance(node, ast.If) else [node]
    names: set[str] = set()
    for node in statements:
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return {name for name in names if name in known}


def test_no_module_is_over_400_lines():
    others = [p for folder in ("bench", "tests", "docs") for p in (ROOT / folder).rglob("*.py")]
    sources = [*modules().values(), *others]
    long = {str(p.relative_to(ROOT)): n for p in sources
            if (n := len(p.read_text().splitlines())) > MAX_LINES}  # fmt: skip
    assert long == {}


def test_evaluators_never_import_the_agent():
    known = modules()
    for name, path in known.items():
        if name.startswith("edas_agent.evaluators"):
            agent = [m for m in imports(path, known) if not m.startswith("edas_agent.evaluators")]
            assert agent == [], f"{name} imports {agent}"


def cycles_in(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles = []
    state: dict[str, str] = {}  # visiting, done

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "visiting"
        for other in sorted(graph[name]):
            if state.get(other) == "visiting":
                cycles.append([*trail[trail.index(other) :], other])
            elif other not in state:
                visit(other, [*trail, other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return cycles


def test_no_import_cycle():
    known = modules()
    assert cycles_in({name: imports(path, known) - {name} for name, path in known.items()}) == []


def test_the_checks_can_fail(tmp_path: Path):
    """On modules made to break them: a cycle, and an import found in a TYPE_CHECKING block."""
    assert cycles_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
    (tmp_path / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from edas_agent.b import x\n"
    )
    known = {"edas_agent.a": tmp_path / "a.py", "edas_agent.b": tmp_path / "a.py"}
    assert imports(known["edas_agent.a"], known) == {"edas_agent.b"}
