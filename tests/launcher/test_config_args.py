"""Family flags of `launch train`: --init, --loss, --optimizer, --scheduler pick registry entries by name."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from launcher.cli import main


def printed_config(*args: str):
    import yaml

    result = CliRunner().invoke(main, ["train", "--print-config", *args])
    return result, yaml.safe_load(result.output) if result.exit_code == 0 else None


def test_family_flags_select_by_name_and_keep_set_parameters():
    result, cfg = printed_config("--init", "orthogonal", "--loss", "kl_div", "--optimizer", "nadam",
                                 "--scheduler", "onecycle", "-s", "scheduler.warmup_epochs=0.5",
                                 "-s", "optimizer.no_decay_bias_norm=true")
    assert result.exit_code == 0, result.output
    assert [cfg[f]["name"] for f in ("init", "loss", "optimizer", "scheduler")] == \
           ["orthogonal", "kl_div", "nadam", "onecycle"]
    assert cfg["scheduler"]["warmup_epochs"] == 0.5 and cfg["optimizer"]["no_decay_bias_norm"] is True
    assert "momentum" not in cfg["optimizer"]  # sgd's parameter left behind when switching


@pytest.mark.parametrize("args, message", [
    (["--optimizer", "sparse_adam"], "optimizer 'sparse_adam' cannot be used here: SparseAdam only takes"),
    (["--scheduler", "warmup"], "unknown scheduler 'warmup'; valid: constant, cosine"),
    (["--loss", "multi_margin", "-s", "transforms.batch=[cutmix]"], "loss 'multi_margin' cannot take"),
])
def test_bad_family_choices_are_one_line_errors(args, message):
    result, _ = printed_config(*args)
    assert result.exit_code == 2 and result.output.startswith("error: ") and message in result.output
