"""launcher.table: one column layout for `launch runs`, `launch compare` and the sweep console."""
from __future__ import annotations

from launcher.sweep.console import table
from launcher.table import render


def test_columns_are_aligned_under_a_rule_and_values_formatted_for_reading():
    out = render(["run", "valid/acc", "lr"], [["a", 0.91234567, "0.000123456"], ["bb", None, "0.1"]])
    assert out.splitlines() == ["run  valid/acc  lr",
                                "---  ---------  --------",
                                "a    0.9123     0.000123",
                                "bb   -          0.1"]


def test_the_sweep_console_keeps_the_layout_with_its_own_cells():
    out = table(["trial", "acc", "note"], [["t-1", 0.912345, "x" * 50], ["t-2", None, "ok"]])
    assert out.splitlines() == ["trial  acc     note",
                                "-----  ------  " + "-" * 40,
                                "t-1    0.9123  " + "x" * 37 + "...",
                                "t-2            ok"]


def test_a_run_id_that_reads_like_an_exponent_stays_as_written():
    out = render(["id", "lr"], [["9e004775", "1e-06"], ["3e000012", "1.2345e+20"]])
    assert out.splitlines()[2:] == ["9e004775  1e-06", "3e000012  1.23e+20"]
