"""`launch sweep` without Ray: --dry-run and bad input (exit 2, nothing written, no Ray)."""
from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from launcher.cli import main

OPTIM = Path(__file__).parents[3] / "search_spaces" / "optim.yaml"


def test_dry_run_prints_trials_space_and_checks_every_choice(tmp_path):
    result = CliRunner().invoke(main, ["sweep", str(OPTIM), "--dry-run", "-n", "5", "-s", "epochs=4"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "sweep optim: 5 trials, random search, scheduler asha(grace_period=3" in out
    assert "4 epochs of net on digits" in out
    assert "optimizer.momentum  uniform [0.5, 0.99]  when optimizer.name in ['sgd', 'rmsprop']" in out
    assert "checked: every combination of choices resolves to a valid train config" in out
    assert not any(tmp_path.iterdir()), "a dry run writes nothing"


def test_dry_run_does_not_import_ray(tmp_path):
    import subprocess

    code = ("import sys; from launcher.cli import main\n"
            "try: main(['sweep', sys.argv[1], '--dry-run'])\n"
            "except SystemExit: pass\n"
            "assert 'ray' not in sys.modules and 'mlflow' not in sys.modules, 'imported ray or mlflow'")
    out = subprocess.run([sys.executable, "-c", code, str(OPTIM)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "sweep optim: 24 trials" in out.stdout


def test_bad_sweep_file_is_one_line_with_its_line_number_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nspace:\n  optimizer.name: {choice: [sgd, lion]}\n")
    result = CliRunner().invoke(main, ["sweep", str(bad)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}:3: space.optimizer.name:"), result.stderr
    assert "unknown optimizer 'lion'; valid: " in lines[0] and "adamw" in lines[0]
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()


def test_the_summary_names_the_remote_sweep_folder_not_the_local_scratch(tmp_path):
    from launcher.sweep.console import folder_lines

    scratch = tmp_path / "launch-scratch" / "sweeps" / "optim-20261206-120000"
    remote = folder_lines(scratch, "s3://launch-runs/runs/sweeps/optim-20261206-120000")
    assert remote[0].startswith("sweep folder:    s3://launch-runs/runs/sweeps/optim-20261206-120000  (")
    assert remote[1].startswith(f"summary files:   {scratch}  (this machine's scratch")
    assert folder_lines(scratch, str(scratch)) == [f"sweep folder:    {scratch}  (trials.csv, comparison.png)"]
