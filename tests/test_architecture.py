"""The package's shape, as a newcomer relies on it (docs/pages/reference/code-layout.md):
small modules, written layers that every import respects, no import cycle between
packages or modules, and evaluators that never import the agent.

Imports are read from the source with `ast`, by installed name (agent/ is edas_agent).
The layer and package checks read every import, a function's deferred ones included: a
deferred import is still a dependency, only a later one.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where each installed package's modules live (pyproject.toml's package-dir)
PACKAGES = {"edas_agent": ROOT / "agent", "edas_agent.evaluators": ROOT / "evaluators"}
MAX_LINES = 400

# The agent's layers, lowest first (the code-layout page draws the same). A unit (a
# subpackage, or a module at the top of edas_agent) imports only units of lower layers, and
# the evaluators, which sit below them all and import none of them.
LAYERS: list[set[str]] = [
    {"errors", "outcome"},  # what every layer may say: a user's mistake, a candidate's end
    {"theory"},  # the EDAS algebra on arrays
    {"config", "record"},  # the run's settings; the run record and its folder
    {"training", "integrations"},  # learners trained through the door; other libraries
    {"proposers"},  # who suggests edits
    {"search"},  # the loop and the interfaces its strategies implement
    {"fidelity", "continuous"},  # the strategies: screening, continuous steps
    {"session", "analysis"},  # a run wired from its config; reading finished runs
    {"cli"},  # the command
    {"testing", "__init__", "__main__"},  # the public face
]
EVALUATORS = "evaluators"


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def imports(path: Path, known: dict[str, Path], deferred: bool = False) -> set[str]:
    """The project modules `path` imports when it loads (module level, TYPE_CHECKING
    blocks included: a cycle there is a cycle for type checkers); with `deferred`, the
    ones inside functions too."""
    tree = ast.parse(path.read_text())
    if deferred:
        statements = list(ast.walk(tree))
    else:
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


def unit_of(module: str) -> str:
    """The layered unit a module belongs to: `search` for edas_agent.search.loop,
    `session` for edas_agent.session, `__init__` for edas_agent itself, `evaluators` for
    anything under edas_agent.evaluators."""
    parts = module.split(".")
    if parts[:2] == ["edas_agent", EVALUATORS]:
        return EVALUATORS
    return parts[1] if len(parts) > 1 else "__init__"


def unit_graph(known: dict[str, Path]) -> dict[str, set[str]]:
    """Which units import which (every import, deferred ones included)."""
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        source = unit_of(name)
        targets = {unit_of(m) for m in imports(path, known, deferred=True)} - {source}
        graph.setdefault(source, set()).update(targets)
    return graph


def layer_violations(graph: dict[str, set[str]], layers: list[set[str]]) -> list[str]:
    """Each import of a unit from its own layer or a higher one, and each unit no layer
    names (a new package must be placed)."""
    level = {unit: number for number, layer in enumerate(layers) for unit in layer}
    level[EVALUATORS] = -1
    problems = [f"{unit} is in no layer" for unit in sorted(graph) if unit not in level]
    for source in sorted(graph):
        for target in sorted(graph[source]):
            if source in level and target in level and level[target] >= level[source]:
                problems.append(f"{source} (layer {level[source]}) imports {target} "
                                f"(layer {level[target]})")  # fmt: skip
    return problems


def cycles_in(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles = []
    state: dict[str, str] = {}  # visiting, done

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "visiting"
        for other in sorted(graph.get(name, ())):
            if state.get(other) == "visiting":
                cycles.append([*trail[trail.index(other) :], other])
            elif other not in state:
                visit(other, [*trail, other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return cycles


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
            found = imports(path, known, deferred=True)
            agent = [m for m in found if not m.startswith("edas_agent.evaluators")]
            assert agent == [], f"{name} imports {agent}"


def test_every_import_goes_down_the_layers():
    assert layer_violations(unit_graph(modules()), LAYERS) == []


def test_no_cycle_between_packages():
    assert cycles_in(unit_graph(modules())) == []


def test_no_cycle_between_modules():
    known = modules()
    assert cycles_in({name: imports(path, known) - {name} for name, path in known.items()}) == []


def bench_imports() -> dict[str, set[str]]:
    """Each bench script's imports: of edas_agent (every one, deferred included) and of
    the scripts beside it (by file name, as they import each other)."""
    scripts = {p.stem: p for p in (ROOT / "bench").glob("*.py")}
    found = {}
    for name, path in scripts.items():
        modules_ = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules_.add(node.module)
            elif isinstance(node, ast.Import):
                modules_ |= {a.name for a in node.names}
        found[name] = {m for m in modules_ if m.startswith("edas_agent") or m in scripts}
    return found


def private_imports(found: dict[str, set[str]], known: dict[str, Path]) -> list[str]:
    """Imports of a module below a package's public face (the package's __init__)."""
    return sorted(f"{script}: {module}" for script, imported in found.items()
                  for module in imported
                  if module in known and known[module].name != "__init__.py")  # fmt: skip


def test_bench_uses_the_public_api_and_has_no_cycle():
    """Scripts import what edas_agent and its packages export, as a user's would."""
    found = bench_imports()
    assert private_imports(found, modules()) == []
    beside = {name: {m for m in imported if not m.startswith("edas_agent")}
              for name, imported in found.items()}  # fmt: skip
    assert cycles_in(beside) == []


def test_the_checks_can_fail(tmp_path: Path):
    """Each check, on the real tree with one import added that breaks it, and on modules
    made to break them: an upward import, a package cycle, a module cycle, an import found
    in a TYPE_CHECKING block or in a function."""
    graph = unit_graph(modules())
    upward = {**graph, "record": graph["record"] | {"search"}}  # the record reading the loop
    assert layer_violations(upward, LAYERS) == ["record (layer 2) imports search (layer 5)"]
    assert ["record", "search", "record"] in cycles_in(upward)
    sideways = {**graph, "fidelity": graph["fidelity"] | {"continuous"}}
    assert layer_violations(sideways, LAYERS) == ["fidelity (layer 6) imports continuous (layer 6)"]
    assert layer_violations({**graph, "newcomer": set()}, LAYERS) == ["newcomer is in no layer"]
    assert cycles_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]

    (tmp_path / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from edas_agent.b import x\n"
        "def f():\n    from edas_agent.c import y\n"
    )
    known = {f"edas_agent.{m}": tmp_path / "a.py" for m in "abc"}
    assert imports(known["edas_agent.a"], known) == {"edas_agent.b"}
    assert imports(known["edas_agent.a"], known, deferred=True) == {"edas_agent.b", "edas_agent.c"}
    assert unit_of("edas_agent.search.loop") == "search"
    known = modules()
    internal = {"a_bench": {"edas_agent.search.loop", "edas_agent.theory"}}
    assert private_imports(internal, known) == ["a_bench: edas_agent.search.loop"]
    assert unit_of("edas_agent.evaluators.tabular.model") == EVALUATORS
