"""Old call forms of the public API, accepted for one release with a ``DeprecationWarning``.

The vocabulary (``docs/api.md``) made most arguments keyword-only and renamed a few
(``sensor_id`` → ``sensors``, ``device_ids`` → ``devices``, ``interval="hour"`` →
``"1h"``). Code written against 0.1 keeps working, and says what to change, through
:func:`legacy_call_forms`; it is the only place that knows the old forms, so removing
them next release is one deletion per decorator.

Examples
--------
>>> import warnings
>>> @legacy_call_forms(positional=("start", "end"), renamed={"device_id": "devices"})
... def anomalies(*, start=None, end=None, devices=None):
...     return start, end, devices
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     anomalies("2026-01-01", device_id="d1")
('2026-01-01', None, 'd1')
>>> for w in caught:
...     print(w.message)
anomalies(): pass start as a keyword (start=...); positional use is deprecated
  (removed in iotlab 0.3)
anomalies(): device_id= is deprecated, use devices= (removed in iotlab 0.3)
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

__all__ = ["REMOVED_IN", "deprecated", "legacy_call_forms"]

#: The release that drops every form accepted here.
REMOVED_IN = "0.3"

F = TypeVar("F", bound=Callable[..., Any])


def deprecated(message: str, *, stacklevel: int = 3) -> None:
    """Warn once per call site that an old form was used, and what replaces it."""
    warnings.warn(
        f"{message} (removed in iotlab {REMOVED_IN})",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def legacy_call_forms(
    *,
    positional: Sequence[str] = (),
    renamed: Mapping[str, str] | None = None,
    leading: int | None = None,
    store_first: bool = False,
) -> Callable[[F], F]:
    """Accept a function's 0.1 call forms, with a ``DeprecationWarning`` for each.

    Parameters
    ----------
    positional
        Names, in their old order, of the arguments that used to be positional after
        the ones the function still takes positionally and are now keyword-only.
    renamed
        Old keyword → new keyword. Applied after ``positional``, so an old positional
        name may itself be renamed.
    leading
        How many positional arguments the function still takes (``self`` included);
        by default, its own positional parameters.
    store_first
        The first argument is a store and used to be a ``Platform``: a Platform passed
        there is replaced by its store.
    """
    renamed = dict(renamed or {})

    def decorate(function: F) -> F:
        import inspect

        params = inspect.signature(function).parameters.values()
        kept = leading
        if kept is None:
            kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            kept = sum(p.kind in kinds for p in params)
        name = function.__qualname__

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if store_first and args and hasattr(args[0], "repository"):
                deprecated(f"{name}(platform, ...) is deprecated, pass platform.store")
                args = (args[0].store, *args[1:])
            extra = args[kept:]
            if extra:
                if len(extra) > len(positional):
                    raise TypeError(
                        f"{name}() takes {kept} positional argument(s) but {len(args)} were given"
                    )
                olds = positional[: len(extra)]
                for old, value in zip(olds, extra):
                    if old in kwargs:
                        raise TypeError(f"{name}() got multiple values for argument {old!r}")
                    kwargs[old] = value
                how = ", ".join(f"{old}=..." for old in olds)
                deprecated(
                    f"{name}(): pass {', '.join(olds)} as a keyword ({how}); positional use "
                    "is deprecated",
                    stacklevel=3,
                )
                args = args[:kept]
            for old, new in renamed.items():
                if old in kwargs:
                    if new in kwargs and kwargs[new] is not None:
                        raise TypeError(f"{name}(): give {new}= only, not also {old}=")
                    kwargs[new] = kwargs.pop(old)
                    deprecated(f"{name}(): {old}= is deprecated, use {new}=", stacklevel=3)
            return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
