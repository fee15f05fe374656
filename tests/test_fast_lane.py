"""The fast lane (`python -m pytest -m "not slow"`) reaches every module of launcher/ and trainlib/.

Read from the source with `ast`, like tests/test_import_graph.py: a test file is in the fast lane
when it holds a test not marked slow (neither by the file's `pytestmark` nor by a decorator). A
module is reached when such a file, a test helper module it uses, or a reached module imports it
(at any level: the commands import lazily, on the path a test drives) or runs it with `-m`. A
module nobody in the fast lane reaches could break with only the slow lane noticing. It is a
bound, not coverage: docs/development.md says how to check what the fast lane really runs.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.test_import_graph import ROOT, _absolute, module_files

TESTS = ROOT / "tests"


def _marks_slow(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "slow" for n in ast.walk(node))


def _test_functions(tree: ast.Module):
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            yield from (n for n in node.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_"))
        elif isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            yield node


def _is_type_checking(node: ast.If) -> bool:
    """`if TYPE_CHECKING:` (a type-only import exercises nothing)."""
    test = node.test
    return getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == "TYPE_CHECKING"


def in_fast_lane(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            if _marks_slow(node.value):
                return False
    return any(not any(_marks_slow(d) for d in test.decorator_list) for test in _test_functions(tree))


def imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Dotted names (and `name.attr` for `from name import attr`) that `tree` imports, at any level."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.Import):
                names.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _absolute(child, module, is_package)
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in child.names)
            visit(child)

    visit(tree)
    return names


def reached_modules() -> set[str]:
    """The project modules the fast lane reaches: imported by a fast test file, run by it with `-m`,
    or imported (at any level: the commands import lazily) or run with `-m` by a reached module or a
    test helper module; a package that imports its modules with pkgutil reaches them all."""
    files = module_files()
    helpers = {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in TESTS.rglob("*.py")
               if not p.name.startswith(("test_", "__init__", "conftest"))}
    reached: set[str] = set()
    queue: list[tuple[str, Path]] = []
    for path in sorted(TESTS.rglob("test_*.py")):
        if in_fast_lane(ast.parse(path.read_text(), str(path))):
            queue.append(("tests", path))
    while queue:
        module, path = queue.pop()
        source = path.read_text()
        named = imported_names(ast.parse(source, str(path)), module, path.name == "__init__.py")
        for name in re.findall(r"""["']-m["'],\s*["']([\w.]+)["']""", source):  # "-m", "launcher"
            named.update({name, f"{name}.__main__"})
        if "pkgutil.iter_modules(__path__)" in source:
            named.update(m for m in files if m.startswith(f"{module}."))
        for name in named:
            found = _with_parents(name, files) or (name if name in helpers else None)
            if found and found not in reached:
                reached.add(found)
                queue.append((found, files.get(found) or helpers[found]))
    # importing a.b.c runs a/__init__ and a/b/__init__ first
    reached.update(parent for module in list(reached) for parent in _packages_of(module, files))
    return reached & set(files)


def _with_parents(name: str, files: dict[str, Path]) -> str | None:
    """The project module `name` denotes (`pkg.mod.attr` -> `pkg.mod`), or None."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in files:
            return ".".join(parts)
        parts.pop()
    return None


def _packages_of(module: str, files: dict[str, Path]) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in files]


def test_the_lane_is_read_from_marks():
    fast = ast.parse("import pytest\ndef test_a(): pass\n@pytest.mark.slow\ndef test_b(): pass\n")
    slow_file = ast.parse("import pytest\npytestmark = [pytest.mark.slow]\ndef test_a(): pass\n")
    all_slow = ast.parse("import pytest\n@pytest.mark.slow\ndef test_a(): pass\n")
    assert in_fast_lane(fast) and not in_fast_lane(slow_file) and not in_fast_lane(all_slow)


def test_imports_at_any_level_count_and_type_checking_ones_do_not():
    tree = ast.parse("import a\nfrom b import c\ndef f():\n    import d\nif TYPE_CHECKING:\n    import e\n")
    assert imported_names(tree, "m", False) == {"a", "b", "b.c", "d"}


def test_every_module_is_reached_by_the_fast_lane():
    missing = sorted(set(module_files()) - reached_modules())
    assert not missing, ("modules no fast test imports (add a cheap test that exercises each):\n"
                         + "\n".join(missing))
