"""Keep Prophet and cmdstanpy quiet and tidy.

Prophet logs every fit at INFO through ``cmdstanpy`` and complains at import time
(``prophet.plot``, ERROR) that plotly is missing; in a notebook that buries the
output. Only those named loggers are touched: the root logger and any handler
the user configured stay as they are.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["fit_quietly", "import_prophet", "prophet_warnings_silenced"]


class _WarmStartNoise(logging.Filter):
    """Drop the two log lines of an L-BFGS run that stops early and is redone by Newton.

    A warm-started refit can begin at the optimum, where L-BFGS' line search cannot
    improve and cmdstan exits with an error; Prophet then refits with Newton (correctly)
    after logging an ERROR and a WARNING that are not news to anyone.
    """

    _NOISE = ("Optimization terminated abnormally", "Chain [1] error")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in self._NOISE)


@contextmanager
def prophet_warnings_silenced() -> Iterator[None]:
    """Hide pandas deprecation warnings that Prophet's own code triggers.

    They are about Prophet's use of pandas (e.g. ``drop(inplace=True)``), not about
    anything our caller can change; the filter is restored on exit.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield


def import_prophet() -> Any:
    """Import and return the ``Prophet`` class with its loggers set to WARNING."""
    import cmdstanpy.utils

    # cmdstanpy sets its logger to DEBUG (with an INFO handler) the first time it is
    # asked for it, so ask first and lower it after.
    cmdstanpy.utils.get_logger()
    for name in ("prophet", "cmdstanpy"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)
    # Filters act only on the logger a record is made on, not on its parents.
    for name in ("prophet.models", "cmdstanpy"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _WarmStartNoise) for f in logger.filters):
            logger.addFilter(_WarmStartNoise())
    # plotly is an optional plotting extra we never use; its import error is not news.
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
    from prophet import Prophet

    return Prophet


def fit_quietly(model: Any, history: Any, **fit_args: Any) -> Any:
    """Fit a Prophet ``model`` (``fit_args`` go to ``Prophet.fit``: ``init``, ``iter``,
    ``algorithm``) and delete cmdstan's CSV/stdout files right after.

    cmdstanpy only removes its temporary directory at interpreter exit; a long
    fleet run would otherwise leave thousands of files behind.
    """
    try:
        with prophet_warnings_silenced():
            model.fit(history, **fit_args)
    finally:
        backend = getattr(model, "stan_backend", None)
        if backend is not None:
            backend.cleanup()
    return model
