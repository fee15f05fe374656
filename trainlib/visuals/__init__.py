"""Visual diagnosis (the seed's chapter 4): TensorBoardX images, histograms, curves, projector.

Every module of this package is imported here, so each visual attaches its builder to the
entry `trainlib.visual_settings` describes: adding a visual is describing it there and adding a module.
"""
from __future__ import annotations

import importlib
import pkgutil

from trainlib.visual_settings import VISUALS
from trainlib.visuals.catalog import build_visuals

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["VISUALS", "build_visuals"]
