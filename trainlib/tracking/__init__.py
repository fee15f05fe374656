"""Run tracking behind one small interface: MLflow, TensorBoardX, or nothing."""
from trainlib.tracking.base import MultiTracker, NullTracker, Tracker

__all__ = ["MultiTracker", "NullTracker", "Tracker"]
