"""Driver errors as :mod:`iotlab.errors` types naming the host and the table.

The Cassandra driver raises its own classes (``NoHostAvailable`` is not even a
``DriverException``); callers of a store see :class:`~iotlab.errors.StoreUnavailableError`
when the cluster did not answer (down, restarting, overloaded: worth retrying) and
:class:`~iotlab.errors.StoreError` for a request it refused.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from iotlab.errors import IotlabError, StoreError, StoreUnavailableError

__all__ = ["driver_errors", "transient_errors", "translated"]

F = TypeVar("F", bound=Callable[..., Any])
_DETAIL = 300  # characters of the driver's message kept


def transient_errors() -> tuple[type[BaseException], ...]:
    """Driver errors that say the cluster did not answer (worth retrying)."""
    return _transient()


def _transient() -> tuple[type[BaseException], ...]:
    import cassandra
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionException

    return (
        NoHostAvailable,
        ConnectionException,
        cassandra.OperationTimedOut,
        cassandra.Unavailable,
        cassandra.Timeout,
        cassandra.CoordinationFailure,
        OSError,
    )


def _refused() -> tuple[type[BaseException], ...]:
    import cassandra
    from cassandra.protocol import ErrorMessage

    return (cassandra.DriverException, ErrorMessage)


@contextmanager
def translated(where: str, what: str) -> Iterator[None]:
    """Re-raise driver errors met while doing ``what`` on Cassandra at ``where``."""
    try:
        yield
    except IotlabError:
        raise
    except _transient() as exc:
        detail = _too_few_replicas(exc) or f"{type(exc).__name__}: {exc}"[:_DETAIL]
        raise StoreUnavailableError(
            f"Cassandra at {where} did not answer while {what}: {detail}"
        ) from exc
    except _refused() as exc:
        detail = f"{type(exc).__name__}: {exc}"[:_DETAIL]
        raise StoreError(f"Cassandra at {where} refused a request while {what}: {detail}") from exc


def _too_few_replicas(exc: BaseException) -> str | None:
    """``"LOCAL_QUORUM needs 2 replicas, 1 alive"`` when ``exc`` is (or wraps) the
    coordinator's Unavailable: nodes are down, and the message should say how many."""
    import cassandra
    from cassandra.cluster import NoHostAvailable

    causes: list[object] = [exc]
    if isinstance(exc, NoHostAvailable):
        errors = exc.errors or {}
        causes += list(errors.values() if isinstance(errors, dict) else errors)
    for cause in causes:
        if isinstance(cause, cassandra.Unavailable):
            level = cassandra.ConsistencyLevel.value_to_name.get(cause.consistency, "?")
            return (
                f"too few replicas alive: {level} needs {cause.required_replicas}, "
                f"{cause.alive_replicas} alive (nodes are down)"
            )
    return None


def driver_errors(action: str, *, table_arg: bool = True) -> Callable[[F], F]:
    """Decorate a store method: its driver errors name the hosts and ``action``; with
    ``table_arg``, a first argument that is a table name (or a mapping of them) too."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            what = action
            if not table_arg:
                what = f"{action} {self.keyspace}.events"
            elif args and isinstance(args[0], str):
                what = f"{action} {self.keyspace}.{args[0]}"
            elif args and hasattr(args[0], "keys"):
                what = f"{action} {', '.join(f'{self.keyspace}.{t}' for t in args[0])}"
            url = self.url
            with translated(f"{','.join(url.hosts)}:{url.port}", what):
                return method(self, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
