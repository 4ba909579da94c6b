"""The package's shape: no import cycles between its modules, and no function longer than ~80 lines but the
few named here with the reason."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "clusterer"
MAX_LINES = 80
# functions allowed past MAX_LINES, and why
LONG = {
    "campaigns/decisions.py:decide": "one pass from scores to prompt, account and operator flags; splitting it would "
    "thread a dozen per-prompt arrays through helpers (the lead's module, being tuned)",
    "campaigns/decisions.py:campaign_features": "one polars aggregation per feature family, read top to bottom",
    "clustering/families.py:_behaviour_stage": "the behaviour evidence terms, each a few lines, in the order the "
    "module docstring explains them",
    "report/html/data.py:gather_families": "assembles one report page's facts in page order",
    "report/console.py:campaign_detail": "builds one rich panel row by row, in display order",
}


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the package that ``name`` imports (module level and inside functions; not TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            root = base[: len(base) - node.level + 1] if node.level else []
            mod = ".".join(root + ([node.module] if node.module else []))
            for alias in node.names:
                cand = f"{mod}.{alias.name}"
                out.add(cand if cand in known else mod)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m in known and m != name and not name.startswith(m + ".")}


def test_import_graph_has_no_cycles():
    mods = _modules()
    graph = {name: _imports(name, path, set(mods)) for name, path in mods.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        raise AssertionError("import cycle: " + " -> ".join(err.args[1])) from None


def test_functions_stay_short():
    long = {}
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                key = f"{path.relative_to(PKG).as_posix()}:{node.name}"
                if n > MAX_LINES and key not in LONG:
                    long[key] = n
    assert not long, f"functions over {MAX_LINES} lines: {long}"


def test_pipeline_only_orders_stages():
    lines = (PKG / "run" / "pipeline.py").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 100
