"""No dead code in launcher/ and trainlib/: vulture, with the settings in pyproject.toml and the
names it cannot see used in vulture_whitelist.py (each with its reason)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def vulture(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vulture", *args], cwd=ROOT, capture_output=True, text=True)


def test_launcher_and_trainlib_hold_no_dead_code():
    found = vulture()
    assert found.returncode == 0, f"dead code (remove it, or whitelist it with a reason):\n{found.stdout}"


def test_the_check_finds_a_planted_unused_function(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("def never_called():\n    return 1\n")
    found = vulture(str(planted))
    assert found.returncode != 0 and "never_called" in found.stdout
