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
