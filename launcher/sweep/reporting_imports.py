"""A head start for the end of a sweep: what its summary and report import, imported in the background."""
from __future__ import annotations

import threading


def import_ahead() -> threading.Thread:
    """Import what the summary and the report need (matplotlib; scikit-learn and scipy behind optuna's
    fANOVA; tensorboardX, and with it torch) in a background thread while the trials run and the driver
    mostly waits on Ray: after the last trial these imports took 2-3 s of every sweep (issue 26).
    launcher.sweep.callbacks.ImportsAhead starts it once the first trial has started: before that, Tune's
    own set-up in this interpreter would share it with the imports and start the first trial later."""
    thread = threading.Thread(target=_import_reporting, name="import-reporting", daemon=True)
    thread.start()
    return thread


def _import_reporting() -> None:
    from trainlib.heap import collection_paused

    with collection_paused():  # a few hundred thousand objects: no full collection while they come
        try:
            import matplotlib

            matplotlib.use("Agg")  # as launcher.sweep.pictures does, before pyplot picks a backend
            import matplotlib.pyplot  # noqa: F401
            import optuna.importance  # noqa: F401
            import tensorboardX.summary  # noqa: F401

            import launcher.report.sweep_report  # noqa: F401
        except Exception:  # noqa: BLE001 - only a head start: the summary's own imports say what is wrong
            pass
