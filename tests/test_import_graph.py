"""The shape of the code, read from the ``ast`` of every product module: no import circles (imports inside
functions and under TYPE_CHECKING count: a circle hidden in a function is still a circle), the GUI never
imports the command line (both call the core), and the product never imports the tests' helpers."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("assistant", "trainer")
# tests/*.py and the packages in tests/ (mailgen), importable by name when tests/ is on the path
TEST_HELPERS = {p.stem for p in (REPO / "tests").glob("*.py")} | {"tests"}
TEST_HELPERS |= {p.parent.name for p in (REPO / "tests").glob("*/__init__.py")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}


def imported(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """Every module ``path`` imports anywhere in its body (``from a import b`` names ``a.b`` when that is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            subs = {f"{base}.{alias.name}" for alias in node.names}
            found.update(subs & known.keys() or {base})
    # Importing a.b.c runs a/b/__init__.py first (and a's): those count too, but not the packages this module is
    # in (they are being initialised already when it runs).
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)} | {name}
    parents = {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 1)}
    return found | {p for p in parents if p in known and p not in own}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(path, name, known) for name, path in known.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue  # outside the product
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_circles_are_found_by_this_reading():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_a_package_init_counts_as_imported_with_its_modules(tmp_path):
    """``trainer.edits`` importing ``trainer.pairs.split`` runs ``trainer/pairs/__init__.py``, which imported
    ``trainer.pairs.build``, which imported ``trainer.edits``: a circle that broke ``import trainer.edits``."""
    source = tmp_path / "edits.py"
    source.write_text("from trainer.pairs.split import VALIDATION\n")
    known = {"trainer": source, "trainer.pairs": source, "trainer.pairs.split": source, "trainer.edits": source}
    assert imported(source, "trainer.edits", known) == {"trainer.pairs.split", "trainer.pairs"}
    inside = tmp_path / "build.py"
    inside.write_text("from trainer.pairs.prompt import x\n")
    known |= {"trainer.pairs.build": inside, "trainer.pairs.prompt": inside}
    assert imported(inside, "trainer.pairs.build", known) == {"trainer.pairs.prompt"}  # its own package: no


def test_the_product_has_no_import_circles():
    assert circles(graph()) == []


def test_the_gui_never_imports_the_command_line():
    edges = graph()
    offenders = sorted(
        f"{m} imports {t}"
        for m, targets in edges.items()
        if m.startswith("assistant.gui")
        for t in targets
        if t == "assistant.cli" or t.startswith("assistant.cli.")
    )
    assert offenders == []


def test_the_product_never_imports_test_helpers():
    edges = graph()
    offenders = sorted(
        f"{m} imports {t}" for m, targets in edges.items() for t in targets if t.split(".")[0] in TEST_HELPERS
    )
    assert offenders == []


def test_one_module_reads_and_writes_the_adapters_table():
    """Training registers, drafting and evaluation look up, the GUI and CLI list and choose: all through
    assistant/store/adapters.py (its migration creates the table)."""
    owners = {"assistant.store.adapters", "assistant.store.migrations"}
    table = re.compile(r"""\b(?:FROM|INTO|UPDATE|JOIN)\s+adapters\b|\bdb\[["']adapters["']\]""", re.IGNORECASE)
    touching = {name for name, path in modules().items() if table.search(path.read_text(encoding="utf-8"))}
    assert touching == owners
