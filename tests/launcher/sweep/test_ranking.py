"""The best trial of a sweep: the best value over each trial's epochs; ties broken by the final value,
then by the lower final valid/loss (as Ray's ResultGrid would rank by the last epoch)."""
from __future__ import annotations

from launcher.sweep.tracking import RANKING, TrialRow, ranked


def row(trial: str, best: float, last: float, loss: float | None = None) -> TrialRow:
    return TrialRow(trial=trial, run_id=trial, status="FINISHED", epochs=3, best=best, last=last, test_acc=None,
                    params={}, run_dir="", node_ip="", gpu_ids="", attempt="1", loss=loss)


def test_five_ties_on_the_best_epoch_go_to_the_trial_that_ends_there():
    """The issue's sweep: five trials reach valid/acc 1.0; 00001 fell back to 0.972, 00012 ends at 1.0."""
    rows = [row("t-00001", 1.0, 0.972, 0.09), row("t-00004", 1.0, 0.989, 0.05), row("t-00007", 0.95, 0.95, 0.2),
            row("t-00009", 1.0, 0.983, 0.04), row("t-00012", 1.0, 1.0, 0.03), row("t-00015", 1.0, 0.994, 0.02)]
    assert [r.trial for r in ranked(rows, "max")] == ["t-00012", "t-00015", "t-00004", "t-00009", "t-00001", "t-00007"]


def test_then_the_lower_loss_and_min_mode_ranks_the_other_way():
    rows = [row("a", 1.0, 1.0, 0.3), row("b", 1.0, 1.0, 0.1), row("c", 1.0, 1.0, None)]
    assert [r.trial for r in ranked(rows, "max")] == ["b", "a", "c"]
    losses = [row("x", 0.1, 0.3, None), row("y", 0.1, 0.2, None), row("z", 0.05, 0.5, None)]
    assert [r.trial for r in ranked(losses, "min")] == ["z", "y", "x"]


def test_the_summary_says_which_scope_it_ranks_by():
    assert RANKING == "best value over each trial's epochs; ties: the last epoch's value, then the lower last valid/loss"
