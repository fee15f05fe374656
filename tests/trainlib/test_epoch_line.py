"""The line `launch train` prints per epoch."""
from __future__ import annotations

import pytest

from trainlib.run import epoch_line


@pytest.mark.parametrize("per_second, shown", [(5497.4, "5,497 img/s"), (123.4, "123 img/s"), (3.31, "3.31 img/s"),
                                               (0.3142, "0.314 img/s")])
def test_the_epoch_line_shows_a_slow_rate_in_significant_digits(per_second, shown):
    metrics = {"train/loss": 1.0, "train/acc": 0.5, "valid/loss": 1.0, "valid/acc": 0.5, "lr": 0.05,
               "time/epoch_s": 1.0, "time/img_per_s": per_second}
    assert epoch_line(1, 2, metrics).endswith("1.0s  " + shown)


@pytest.mark.parametrize("value, shown", [(2.30259, "2.3026"), (1.613e9, "1.613e+09"), (8.8e31, "8.8e+31"),
                                          (float("nan"), "nan")])
def test_a_huge_loss_shows_in_significant_digits_not_fixed_point(value, shown):
    metrics = {"train/loss": value, "train/acc": 0.1, "valid/loss": value, "valid/acc": 0.1, "lr": 10,
               "time/epoch_s": 1.0, "time/img_per_s": 100.0}
    assert f"train loss {shown} acc 10.00%  valid loss {shown} acc" in epoch_line(1, 2, metrics)


def test_an_epoch_that_did_not_validate_says_so():
    metrics = {"train/loss": 1.0, "train/acc": 0.5, "lr": 0.05, "time/epoch_s": 1.0, "time/img_per_s": 100.0}
    assert epoch_line(1, 2, metrics) == "epoch   1/2  train loss 1.0000 acc 50.00%  (not validated)  lr 0.05  1.0s  100 img/s"
