"""Every package the code imports is declared in pyproject.toml (or required by a declared one).

The walk covers module-level imports and those deferred into function bodies, plus
`pytest.importorskip("x")` / `import_module("x")` with a literal name. launcher/ and
trainlib/ are held against [project.dependencies]; tests/ against those plus the `test` extra.
"""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
LOCAL = {"launcher", "trainlib", "tests"}
# Distributions a dependency imports only when a feature runs, so no import statement shows them.
INDIRECT = {"tensorboard": "tensorboardX's add_graph (trainlib/visuals/graph.py's model graph)",
            "moviepy": "tensorboardX's add_video (trainlib/visuals/video.py's Grad-CAM video)"}

def missing_runtime_dependencies() -> list[str]:
    """Imports are matched to installed distributions: without them, every import looks undeclared."""
    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    missing = []
    for line in project["dependencies"]:
        try:
            metadata.distribution(Requirement(line).name)
        except metadata.PackageNotFoundError:
            missing.append(Requirement(line).name)
    return missing


MISSING = missing_runtime_dependencies()
# the checks against pyproject.toml alone run in any Python; those that match imports to installed
# distributions need the project installed (CI's fresh venv has it)
needs_the_project_installed = pytest.mark.skipif(
    bool(MISSING), reason=f"the project's dependencies are not installed in this Python ({', '.join(MISSING)}; "
                          f"pip install -e '.[test]')")

DYNAMIC_IMPORTERS = {"importorskip", "import_module"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extras: tuple[str, ...] = ()) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project.get("optional-dependencies", {})
    return [*project["dependencies"], *(r for extra in extras for r in optional[extra])]


def provided(requirements: list[str]) -> set[str]:
    """Normalized names of the declared distributions and everything they require, with extras."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    expanded: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req = todo.pop()
        name, extras = normalize(req.name), frozenset(req.extras)
        if (name, extras) in expanded:
            continue
        expanded.add((name, extras))
        seen.add(name)
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in {"", *extras}):
                todo.append(sub)
    return seen


def imported(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file, anywhere in it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in DYNAMIC_IMPORTERS):
            names.add(node.args[0].value)
    return {name.split(".")[0] for name in names}


def undeclared(root: Path, folders: tuple[str, ...], requirements: list[str]) -> list[str]:
    """One line per third-party import whose distribution the requirements do not provide."""
    allowed = provided(requirements)
    owners = metadata.packages_distributions()
    problems = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            for module in sorted(imported(path) - LOCAL - set(sys.stdlib_module_names)):
                dists = owners.get(module, [])
                if not any(normalize(d) in allowed for d in dists):
                    where = path.relative_to(root)
                    found = f"distribution {', '.join(dists)}" if dists else "not installed"
                    problems.append(f"{where}: imports {module!r} ({found}), which pyproject.toml does not declare")
    return problems


@pytest.mark.parametrize(("folders", "extras"), [(("launcher", "trainlib"), ()), (("tests",), ("test",))],
                         ids=["runtime", "tests"])
@needs_the_project_installed
def test_every_import_is_declared(folders, extras):
    problems = undeclared(ROOT, folders, declared(extras))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("dist", sorted(INDIRECT))
def test_packages_imported_by_dependencies_are_runtime_dependencies(dist):
    assert normalize(dist) in {normalize(Requirement(r).name) for r in declared()}, INDIRECT[dist]


@needs_the_project_installed
def test_an_undeclared_import_is_named_with_its_file(tmp_path):
    """The check itself: a deferred import of a test-only package and of a missing one both fail."""
    (tmp_path / "trainlib").mkdir()
    (tmp_path / "trainlib" / "fine.py").write_text("import torch\nfrom trainlib import run\n")
    (tmp_path / "trainlib" / "bad.py").write_text(
        "def f():\n    import pytest\n    from no_such_module_here.sub import x\n")
    problems = undeclared(tmp_path, ("trainlib",), declared())
    assert len(problems) == 2
    assert problems[0].startswith("trainlib/bad.py: imports 'no_such_module_here' (not installed)")
    assert problems[1].startswith("trainlib/bad.py: imports 'pytest' (distribution pytest)")
