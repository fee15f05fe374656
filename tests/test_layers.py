"""The layers, as a contract: an import only ever points to the same layer or one below.

Every module of launcher/ and trainlib/ belongs to exactly one layer below: a name is that module,
a name ending in `.*` that package and everything in it; the longest matching name wins
(`trainlib.live_checks.catalog` sits lower than the rest of `trainlib.live_checks.*`). The graph is `tests/test_import_graph.py`'s: module- and function-level imports.
A new module in no layer fails the check until it is placed. Run it alone with
`python -m tests.test_layers` (exit 1 and one line per upward import).
"""
from __future__ import annotations

import shutil
import sys

from tests import test_import_graph
from tests.test_import_graph import import_graph

# Lowest first. A layer may import its own layer and any layer below it, never one above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundations", (
        "trainlib", "trainlib.errors", "trainlib.validation", "trainlib.registry", "trainlib.yaml_reader",
        "trainlib.tags", "trainlib.compat", "trainlib.sections", "trainlib.diskspace", "trainlib.output_location",
        "trainlib.threads", "trainlib.heap", "trainlib.lease", "trainlib.metrics", "trainlib.ema", "trainlib.precision",
        "trainlib.device_transforms", "trainlib.checkpoint", "trainlib.reproduce", "trainlib.cache",
    )),
    ("registries and config", (
        "trainlib.models", "trainlib.inits", "trainlib.losses", "trainlib.optimizers", "trainlib.schedulers",
        "trainlib.transforms", "trainlib.data.*", "trainlib.shape_check", "trainlib.config",
        "trainlib.signatures", "trainlib.entry_checks", "trainlib.pipelines", "trainlib.visual_settings",
        "trainlib.describe_registries",  # writes signatures.py from the builders of this layer
        "trainlib.live_checks.catalog",  # the checks' names and advice: the config validates `diagnose.stop_on`
    )),
    ("the loop", (
        "trainlib.engine", "trainlib.observers", "trainlib.tracking.*", "trainlib.visuals.*", "trainlib.live_checks.*",
        "trainlib.distributed", "trainlib.artifacts_fetch", "trainlib.sources", "trainlib.resume",
        "trainlib.finetune", "trainlib.startup", "trainlib.step_setup", "trainlib.stopping",
    )),
    ("the run", ("trainlib.run", "trainlib.lr_find", "trainlib.evaluation")),
    ("the doctor", ("trainlib.diagnose.*",)),
    ("the launcher", ("launcher.*",)),
]

# Known upward imports, each with the issue that removes it. Keep this empty.
IGNORED: dict[tuple[str, str], str] = {
}


def layer_of(module: str) -> int | None:
    """The index in LAYERS of the longest name that matches `module`, None when none does."""
    best, found = -1, None
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            package = name.removesuffix(".*")
            inside = name.endswith(".*") and module.startswith(package + ".")
            if (module == package or inside) and len(name) > best:
                best, found = len(name), index
    return found


def violations(graph: dict[str, set[str]]) -> list[str]:
    """One readable line per module in no layer and per import that points up a layer."""
    lines = [f"{module} is in no layer: add it to LAYERS in tests/test_layers.py"
             for module in sorted(graph) if layer_of(module) is None]
    for module in sorted(graph):
        low = layer_of(module)
        for target in sorted(graph[module]):
            high = layer_of(target)
            if None in (low, high) or high <= low or (module, target) in IGNORED:
                continue
            lines.append(f"upward import: {module} (layer {low + 1}, {LAYERS[low][0]}) imports "
                         f"{target} (layer {high + 1}, {LAYERS[high][0]}); an import may only point "
                         "to its own layer or one below")
    return lines


def test_every_import_points_down_the_layers():
    found = violations(import_graph())
    assert not found, "the layers are broken (tests/test_layers.py):\n" + "\n".join(found)


def test_every_ignored_import_still_exists():
    """An ignore entry outlives its reason only by mistake: once the import is gone, delete it."""
    graph = import_graph()
    assert [pair for pair in IGNORED if pair[1] not in graph.get(pair[0], set())] == []


def test_a_planted_upward_import_fails_the_check(tmp_path, monkeypatch):
    """A copy of the sources where the engine (the loop) imports the run, a layer above it."""
    for package in test_import_graph.PACKAGES:
        shutil.copytree(test_import_graph.ROOT / package, tmp_path / package)
    engine = tmp_path / "trainlib" / "engine.py"
    engine.write_text(engine.read_text() + "\n\ndef planted():\n    from trainlib.run import run\n")
    (tmp_path / "trainlib" / "planted.py").write_text("")
    monkeypatch.setattr(test_import_graph, "ROOT", tmp_path)

    found = violations(import_graph())

    assert found == [
        "trainlib.planted is in no layer: add it to LAYERS in tests/test_layers.py",
        "upward import: trainlib.engine (layer 3, the loop) imports trainlib.run (layer 4, the run); "
        "an import may only point to its own layer or one below",
    ]


def test_the_launcher_sits_above_all_of_trainlib():
    assert layer_of("launcher.sweep.cmd") == len(LAYERS) - 1
    assert violations({"trainlib.engine": {"launcher.table"}, "launcher.table": set()}) == [
        "upward import: trainlib.engine (layer 3, the loop) imports launcher.table (layer 6, the launcher); "
        "an import may only point to its own layer or one below"]


if __name__ == "__main__":
    problems = violations(import_graph())
    print("\n".join(problems) or f"layers ok: {len(import_graph())} modules, every import points down")
    sys.exit(1 if problems else 0)
