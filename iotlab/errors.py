"""The errors iotlab raises, as one tree.

Catch ``IotlabError`` to handle anything the package raises on purpose; catch a
leaf to handle one situation. Errors about bad input also derive from the
built-in exception a Python user would expect (``ValueError``, ``LookupError``,
``ImportError``), so generic handlers keep working.

::

    IotlabError
    ├── ConfigurationError              bad settings, before any I/O
    │   ├── InvalidURLError             (ValueError) malformed store URL or option
    │   ├── UnknownBackendError         (ValueError) URL scheme with no backend
    │   ├── InvalidIdentifierError      (ValueError) keyspace/table name unsafe for CQL/SQL
    │   └── MissingDependencyError      (ImportError) optional extra not installed
    ├── ValidationError                 (ValueError) bad input data; names field and rows
    ├── NotFoundError                   (LookupError) unknown device, sensor, report kind
    ├── StoreError                      a backend failed
    │   ├── StoreConnectionError        host unreachable, authentication refused
    │   │   └── StoreUnavailableError   the store did not answer (down, overloaded); retry
    │   ├── SchemaMismatchError         an existing table has an incompatible shape
    │   └── ConcurrencyError            optimistic-concurrency conflict on append
    ├── HistoryError                    device lifecycle
    │   ├── InvalidTransitionError      (ValueError) command not allowed in this status
    │   └── UnknownEventError           (ValueError) event type or fields not recognised
    └── DetectionError                  a detector could not fit or score

Examples
--------
>>> from iotlab.errors import IotlabError, ValidationError
>>> err = ValidationError("must be finite", field="value", rows=[3, 7])
>>> isinstance(err, (IotlabError, ValueError))
True
>>> print(err)
value: must be finite (rows 3, 7)
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ConcurrencyError",
    "ConfigurationError",
    "DetectionError",
    "HistoryError",
    "InvalidIdentifierError",
    "InvalidTransitionError",
    "InvalidURLError",
    "IotlabError",
    "MissingDependencyError",
    "NotFoundError",
    "SchemaMismatchError",
    "StoreConnectionError",
    "StoreError",
    "StoreUnavailableError",
    "UnknownBackendError",
    "UnknownEventError",
    "ValidationError",
]

_MAX_ROWS_SHOWN = 10


class IotlabError(Exception):
    """Base of every error iotlab raises on purpose."""


class ConfigurationError(IotlabError):
    """Settings are wrong; raised before any query runs."""


class InvalidURLError(ConfigurationError, ValueError):
    """A store URL (or one of its query options) is malformed."""


class UnknownBackendError(ConfigurationError, ValueError):
    """A store URL names a scheme no backend handles."""


class InvalidIdentifierError(ConfigurationError, ValueError):
    """A keyspace or table name is not a safe CQL/SQL identifier."""


class MissingDependencyError(ConfigurationError, ImportError):
    """A dependency is missing; the message says what to install.

    ``extra`` names the iotlab extra that brings an optional dependency
    (``pip install 'iotlab[mqtt]'``); without it the package is one of iotlab's own
    dependencies, missing from a broken environment, and the message names it.
    """

    def __init__(self, package: str, extra: str | None = None) -> None:
        self.package = package
        self.extra = extra
        if extra is None:
            how = f"it is a dependency of iotlab; reinstall it: pip install '{package}'"
        else:
            how = f"pip install 'iotlab[{extra}]'"
        super().__init__(f"{package} is required for this feature: {how}")


class ValidationError(IotlabError, ValueError):
    """Input data is invalid.

    Parameters
    ----------
    message
        What is wrong.
    field
        The column or parameter at fault, if one is.
    rows
        Positions (or index labels) of the offending rows, if any.
    """

    def __init__(
        self, message: str, *, field: str | None = None, rows: Iterable[object] = ()
    ) -> None:
        self.message = message
        self.field = field
        self.rows = list(rows)
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.field}: {self.message}" if self.field else self.message
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:_MAX_ROWS_SHOWN])
            more = len(self.rows) - _MAX_ROWS_SHOWN
            text += f" (rows {shown}{f', and {more} more' if more > 0 else ''})"
        return text

    def __str__(self) -> str:
        return self._render()


class NotFoundError(IotlabError, LookupError):
    """A device, sensor, report kind or other named thing does not exist."""

    def __str__(self) -> str:  # LookupError would repr() the message
        return str(self.args[0]) if self.args else ""


class StoreError(IotlabError):
    """A storage backend failed."""


class StoreConnectionError(StoreError):
    """The store cannot be reached or refused the credentials."""


class StoreUnavailableError(StoreConnectionError):
    """The store did not answer in time (a node down, restarting or overloaded).

    Nothing is known about the request that failed, but iotlab's writes are idempotent:
    retrying it later is safe. The live service does so by itself.
    """


class SchemaMismatchError(StoreError):
    """An existing table's columns differ from what iotlab needs; nothing is dropped."""


class ConcurrencyError(StoreError):
    """Another writer appended the same event version first.

    Reload the aggregate and retry the command.
    """

    def __init__(self, device_id: str, expected_version: int) -> None:
        self.device_id = device_id
        self.expected_version = expected_version
        super().__init__(
            f"device {device_id}: version {expected_version + 1} was already written "
            f"by another writer (expected the stream at version {expected_version})"
        )


class HistoryError(IotlabError):
    """Device lifecycle (event-sourcing) errors."""


class InvalidTransitionError(HistoryError, ValueError):
    """A lifecycle command is not allowed from the device's current status."""


class UnknownEventError(HistoryError, ValueError):
    """A stored or submitted event has an unknown type or wrong fields."""


class DetectionError(IotlabError):
    """A detector could not fit or score a series."""
