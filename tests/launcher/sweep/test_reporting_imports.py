"""launcher.sweep.reporting_imports: the end of a sweep imported ahead, beside Tune's loop."""
from __future__ import annotations

import subprocess
import sys

import pytest

REPORTING = ("matplotlib.pyplot", "optuna.importance", "sklearn", "tensorboardX.summary", "launcher.report.sweep_report")


@pytest.mark.slow  # a fresh interpreter importing matplotlib, optuna and scikit-learn: 3-8 s here
def test_the_summary_and_report_imports_happen_in_the_background_thread():
    """While the trials run, a thread imports what the summary and the report need after the last trial
    (issue 26: 2-3 s of every sweep); matplotlib on Agg, as the sweep's pictures set it."""
    code = ("import sys, threading\n"
            "from launcher.sweep.reporting_imports import import_ahead\n"
            f"names = {REPORTING!r}\n"
            "assert not any(n in sys.modules for n in names), 'imported before the thread ran'\n"
            "thread = import_ahead()\n"
            "assert thread.daemon and thread is not threading.current_thread()\n"
            "thread.join()\n"
            "import matplotlib\n"
            "print([n for n in names if n not in sys.modules], matplotlib.get_backend().lower())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "agg"]
