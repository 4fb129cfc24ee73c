"""The shared words of the public API, checked once (see ``docs/api.md``).

Examples
--------
>>> id_list("env-0001", field="devices")
['env-0001']
>>> id_list(("b", "a"), field="devices")
['b', 'a']
>>> id_list(None, field="devices") is None
True
>>> id_list(7, field="devices")
Traceback (most recent call last):
...
iotlab.errors.ValidationError: devices: must be an id or a list of ids, got 7
>>> id_list(["ok", 3], field="devices")
Traceback (most recent call last):
...
iotlab.errors.ValidationError: devices: must be ids (strings), got 3
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import overload

from iotlab.errors import ValidationError

__all__ = ["id_list"]


@overload
def id_list(value: None, *, field: str) -> None: ...
@overload
def id_list(value: str | Iterable[str], *, field: str) -> list[str]: ...
@overload
def id_list(value: str | Iterable[str] | None, *, field: str) -> list[str] | None: ...


def id_list(value: str | Iterable[str] | None, *, field: str) -> list[str] | None:
    """A ``devices=``/``sensors=`` filter as a list of ids: one id or several; ``None``
    (no filter) stays ``None``. A single string is one id, never its characters."""
    if value is None:
        return None
    if isinstance(value, str):
        ids: list[object] = [value]
    elif isinstance(value, Iterable):
        ids = list(value)
    else:
        raise ValidationError(f"must be an id or a list of ids, got {value!r}", field=field)
    checked: list[str] = []
    for one in ids:
        if not isinstance(one, str) or not one:
            raise ValidationError(f"must be ids (strings), got {one!r}", field=field)
        checked.append(one)
    return checked
