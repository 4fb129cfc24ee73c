"""Which backend serves which URL scheme: a registry of ``"module:Class"`` targets.

Modelled on fsspec's registry. A backend is named by the import path of its
:class:`~iotlab.store.base.Store` subclass and imported only when a URL of its scheme
is parsed or opened, so an unused backend costs nothing (not even its driver). Three
ways to add one:

- the built-ins, ``sqlite`` and ``cassandra``;
- :func:`register_backend` at run time (a notebook, a test, a plug-in's ``__init__``);
- an entry point in the ``iotlab.backends`` group of an installed package, looked up
  the first time its scheme is asked for. In that package's ``pyproject.toml``::

      [project.entry-points."iotlab.backends"]
      duckdb = "iotlab_duckdb:DuckDBStore"

A scheme names one backend: registering another target for a known scheme is refused
unless ``clobber=True``, and an entry point never replaces a registered backend.

Examples
--------
>>> known_backends()["sqlite"]
'iotlab.store.sqlite:SQLiteStore'
>>> backend_class("sqlite").__name__
'SQLiteStore'
>>> register_backend("sqlite", "my_package:MyStore")
Traceback (most recent call last):
...
ValueError: scheme 'sqlite' is already served by 'iotlab.store.sqlite:SQLiteStore'; ...
"""

from __future__ import annotations

import importlib
import re
import warnings
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from iotlab.errors import ConfigurationError, UnknownBackendError

if TYPE_CHECKING:
    from iotlab.store.base import Store

__all__ = [
    "ENTRY_POINT_GROUP",
    "backend_class",
    "known_backends",
    "register_backend",
    "unregister_backend",
]

#: The entry-point group an installed package adds backends to (name = scheme).
ENTRY_POINT_GROUP = "iotlab.backends"

_BUILT_IN = {
    "sqlite": "iotlab.store.sqlite:SQLiteStore",
    "cassandra": "iotlab.store.cassandra:CassandraStore",
}
# RFC 3986: a scheme is a letter, then letters, digits, '+', '-' or '.'; iotlab's are lower case.
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

# scheme -> "module:Class", or the class itself when registered as one.
_registry: dict[str, str | type[Store]] = dict(_BUILT_IN)


def _target_name(target: str | type[Store]) -> str:
    if isinstance(target, str):
        return target
    return f"{target.__module__}:{target.__qualname__}"


def register_backend(scheme: str, target: str | type[Store], *, clobber: bool = False) -> None:
    """Serve ``scheme://`` URLs with the backend ``target``.

    Parameters
    ----------
    scheme
        The URL scheme, lower case (``"duckdb"``).
    target
        ``"module:Class"`` (imported when first needed) or the class, a subclass of
        :class:`~iotlab.store.base.Store`.
    clobber
        Replace a backend already registered for ``scheme``. Without it, registering
        another target for a known scheme raises ``ValueError``; the same one again is
        a no-op.
    """
    if not isinstance(scheme, str) or not _SCHEME.match(scheme):
        raise ValueError(
            f"invalid scheme {scheme!r}: a lower-case letter, then letters, digits, '+', '-' "
            "or '.'"
        )
    if isinstance(target, str):
        if not _TARGET.match(target):
            raise ValueError(f"invalid backend target {target!r}: expected 'module:Class'")
    else:
        _check_store_class(scheme, target)
    known = _registry.get(scheme)
    if known is not None and not clobber and _target_name(known) != _target_name(target):
        raise ValueError(
            f"scheme {scheme!r} is already served by {_target_name(known)!r}; "
            "pass clobber=True to replace it"
        )
    _registry[scheme] = target


def unregister_backend(scheme: str) -> None:
    """Forget the backend of ``scheme`` (a built-in comes back with ``register_backend``).

    Raises ``UnknownBackendError`` if no backend is registered for it.
    """
    if _registry.pop(scheme, None) is None:
        raise UnknownBackendError(f"no backend is registered for scheme {scheme!r}")


def known_backends() -> dict[str, str]:
    """Every scheme a backend is registered for, with its ``"module:Class"``, sorted.

    Includes the entry points of installed packages (without importing them).
    """
    found = {scheme: _target_name(target) for scheme, target in _registry.items()}
    for point in _entry_points():
        found.setdefault(point.name, point.value)
    return dict(sorted(found.items()))


def backend_class(scheme: str) -> type[Store]:
    """The backend class serving ``scheme``, imported now if it was not yet.

    Raises ``UnknownBackendError`` (listing the known schemes) if none serves it, and
    ``ConfigurationError`` if the registered target cannot be imported or is not a
    :class:`~iotlab.store.base.Store`.
    """
    if scheme not in _registry:
        _register_entry_point(scheme)
    target = _registry.get(scheme)
    if target is None:
        raise UnknownBackendError(
            f"unknown store scheme {scheme!r}; known: {', '.join(known_backends())}"
        )
    if not isinstance(target, str):
        return target
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or ""
        if missing != module_name and not module_name.startswith(missing + "."):
            raise  # the backend's own dependency is missing: its message says which
        raise ConfigurationError(
            f"the backend of {scheme}:// URLs, {target!r}, cannot be imported: {exc}"
        ) from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ConfigurationError(
            f"the backend of {scheme}:// URLs, {target!r}: module {module_name!r} has no "
            f"{class_name!r}"
        )
    _check_store_class(scheme, cls)
    return cls


def _check_store_class(scheme: str, cls: object) -> None:
    # By the class's ancestry, not issubclass: importing iotlab.store.base here would make
    # the registry depend on the layer it serves (base -> url -> registry).
    ancestry = getattr(cls, "__mro__", ())
    if not any(c.__module__ == "iotlab.store.base" and c.__name__ == "Store" for c in ancestry):
        raise ConfigurationError(
            f"the backend of {scheme}:// URLs must be a subclass of iotlab.store.Store, "
            f"got {cls!r}"
        )


def _entry_points() -> list:
    return list(entry_points(group=ENTRY_POINT_GROUP))


def _register_entry_point(scheme: str) -> None:
    """Register the entry point named ``scheme``, if an installed package declares one."""
    points = [p for p in _entry_points() if p.name == scheme]
    values = sorted({p.value for p in points})
    if len(values) > 1:
        warnings.warn(
            f"several installed packages declare a backend for {scheme}:// "
            f"({', '.join(values)}); using {values[0]!r}",
            RuntimeWarning,
            stacklevel=3,
        )
    if values:
        register_backend(scheme, values[0])
