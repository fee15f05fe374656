"""Visual diagnosis (the seed's chapter 4): TensorBoardX images, histograms, curves, projector.

Every module of this package is imported here, so each visual registers itself in VISUALS
(see catalog.py): adding a visual is adding a module.
"""
from __future__ import annotations

import importlib
import pkgutil

from trainlib.visuals.catalog import VISUALS, build_visuals, list_visuals, visuals_config

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

VisualsConfig = visuals_config()

__all__ = ["VISUALS", "VisualsConfig", "build_visuals", "list_visuals"]
