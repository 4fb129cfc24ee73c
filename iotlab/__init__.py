"""iotlab: Jupyter-first IoT fleet analytics and simulation.

Examples
--------
>>> import iotlab
>>> lab = iotlab.connect("sqlite://")
>>> lab.describe()["backend"]
'sqlite'
>>> lab.close()
"""

from __future__ import annotations

import importlib
from typing import Any

from iotlab import errors
from iotlab.platform import Platform, connect

__version__ = "0.1.0"

# Subpackages with heavy imports (prophet, ipywidgets, xarray) load on first use.
_LAZY_SUBMODULES = (
    "analytics",
    "datasets",
    "detect",
    "history",
    "ingest",
    "reports",
    "simulate",
    "store",
    "widgets",
)

__all__ = ["Platform", "__version__", "connect", "errors", *_LAZY_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"iotlab.{name}")
    raise AttributeError(f"module 'iotlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
