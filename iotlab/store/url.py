"""Store URLs: ``scheme://[user[:password]@][hosts][/path][?options]``.

This module splits a URL where every scheme splits it and hands the parts to the
backend registered for its scheme (:mod:`iotlab.store.registry`), which checks what
its own URLs mean: ``sqlite:///path.db`` and ``sqlite://`` (in memory), or
``cassandra://h1,h2:9042/keyspace``. Everything is checked before any connection is
attempted, so a typo fails fast with a message naming the part at fault.

Examples
--------
>>> url = parse_store_url("cassandra://u:secret@10.0.0.1,10.0.0.2:9042/iot?replication_factor=3")
>>> url.hosts, url.port, url.keyspace, url.options["replication_factor"]
(('10.0.0.1', '10.0.0.2'), 9042, 'iot', '3')
>>> url  # the password is never shown
StoreURL('cassandra://u:***@10.0.0.1,10.0.0.2:9042/iot?replication_factor=3')
>>> parse_store_url("sqlite://").path is None
True
>>> parse_store_url("sqlite:///x.db").is_local_file
True
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote

from iotlab.errors import InvalidIdentifierError, InvalidURLError, UnknownBackendError

__all__ = [
    "DEFAULT_STORE_URL",
    "StoreURL",
    "URLParts",
    "check_options",
    "parse_store_url",
    "resolve_store_url",
    "validate_identifier",
]

DEFAULT_STORE_URL = "sqlite:///./.iotlab/iotlab.db"

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")
#: CQL's reserved keywords: unquoted, none of them can name a keyspace or table.
CQL_RESERVED = frozenset(
    [
        "add",
        "allow",
        "alter",
        "and",
        "apply",
        "asc",
        "authorize",
        "batch",
        "begin",
        "by",
        "columnfamily",
        "create",
        "default",
        "delete",
        "desc",
        "describe",
        "drop",
        "entries",
        "execute",
        "from",
        "full",
        "grant",
        "if",
        "in",
        "index",
        "infinity",
        "insert",
        "into",
        "is",
        "keyspace",
        "limit",
        "materialized",
        "mbean",
        "mbeans",
        "modify",
        "nan",
        "norecursive",
        "not",
        "null",
        "of",
        "on",
        "or",
        "order",
        "primary",
        "rename",
        "replace",
        "revoke",
        "schema",
        "select",
        "set",
        "table",
        "to",
        "token",
        "truncate",
        "unlogged",
        "unset",
        "update",
        "use",
        "using",
        "view",
        "where",
        "with",
    ]
)


def validate_identifier(name: str, *, what: str = "identifier") -> str:
    """Return ``name`` if it is a safe, unquoted CQL/SQL identifier, else raise.

    Examples
    --------
    >>> validate_identifier("iot_platform", what="keyspace")
    'iot_platform'
    >>> validate_identifier("x; DROP KEYSPACE y", what="keyspace")
    Traceback (most recent call last):
    ...
    iotlab.errors.InvalidIdentifierError: invalid keyspace 'x; DROP KEYSPACE y': ...
    >>> validate_identifier("Select", what="keyspace")
    Traceback (most recent call last):
    ...
    iotlab.errors.InvalidIdentifierError: invalid keyspace 'Select': a reserved CQL keyword; ...
    """
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise InvalidIdentifierError(
            f"invalid {what} {name!r}: use a letter then letters, digits or '_' (max 48)"
        )
    if name.lower() in CQL_RESERVED:
        raise InvalidIdentifierError(
            f"invalid {what} {name!r}: a reserved CQL keyword; choose another name"
        )
    return name


@dataclass(frozen=True)
class StoreURL:
    """A parsed, validated store URL. ``str()`` gives it back without the password.

    Which fields a URL fills is its backend's business: a server backend has ``hosts``,
    ``port`` and a ``keyspace`` (a database on the server); an embedded one a ``path``.
    ``path`` is only ever a file on this machine (``None``: not a file, e.g. in memory).
    """

    scheme: str
    hosts: tuple[str, ...] = ()
    port: int | None = None
    keyspace: str | None = None
    path: str | None = None  # a database file on this machine; None: not a file
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict[str, str] = field(default_factory=dict)

    @property
    def is_local_file(self) -> bool:
        """Whether the store is a file on this machine (at ``path``).

        Examples
        --------
        >>> StoreURL("sqlite", path="x.db").is_local_file, StoreURL("sqlite").is_local_file
        (True, False)
        """
        return self.path is not None

    def __str__(self) -> str:
        query = "&".join(f"{k}={quote(v)}" for k, v in self.options.items())
        query = f"?{query}" if query else ""
        auth = ""
        if self.username:
            auth = quote(self.username) + (":***" if self.password else "") + "@"
        netloc = ",".join(self.hosts) + (f":{self.port}" if self.port is not None else "")
        name = self.keyspace if self.keyspace is not None else self.path
        tail = f"/{name}" if name else ""
        return f"{self.scheme}://{auth}{netloc}{tail}{query}"

    def __repr__(self) -> str:
        return f"StoreURL({str(self)!r})"


@dataclass(frozen=True)
class URLParts:
    """A store URL split where every scheme splits it, for its backend to check.

    ``scheme://[username[:password]@]netloc[/path][?options]``: ``netloc`` is everything
    between the credentials and the first ``/``; ``path`` what follows that ``/``
    (percent-decoded, ``""`` if none). ``text`` is the whole URL, for messages (it may
    hold a password: show :meth:`shown` instead).
    """

    scheme: str
    netloc: str
    path: str
    options: dict[str, str]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    text: str = field(default="", repr=False)

    def shown(self) -> str:
        """The URL as it may appear in a message: credentials replaced by ``***``."""
        secret = _credentials(self.text)
        return self.text.replace(secret + "@", "***@", 1) if secret else self.text


def resolve_store_url(url: str | None) -> str:
    """The URL to use: ``url``, else ``$IOTLAB_STORE``, else the embedded default.

    Examples
    --------
    >>> resolve_store_url("sqlite://")
    'sqlite://'
    """
    return url or os.environ.get("IOTLAB_STORE") or DEFAULT_STORE_URL


def parse_store_url(url: str) -> StoreURL:
    """Parse and validate a store URL; raise a clear error naming what is wrong.

    An error never shows the credentials, even when a password holding ``/``, ``?`` or
    ``@`` (write them ``%2F``, ``%3F``, ``%40``) made the URL unparseable.

    Examples
    --------
    >>> parse_store_url("cassandra://u:pa/ss?w0rd@h:9042/iot")
    Traceback (most recent call last):
    ...
    iotlab.errors.InvalidURLError: malformed store URL 'cassandra://***@h:9042/iot' ...
    >>> parse_store_url("cassandra://u:pa%2Fss%3Fw0rd@h:9042/iot").password == "pa/ss?w0rd"
    True
    """
    try:
        return _parse_store_url(url)
    except (InvalidURLError, InvalidIdentifierError) as exc:
        secret = _credentials(url)
        near_at = "@" + url.rpartition("@")[2][:8] if secret else ""
        if secret and (near_at in str(exc) or any(p in str(exc) for p in _fragments(secret))):
            shown = url.replace(secret, "***", 1)
            raise InvalidURLError(
                f"malformed store URL {shown!r} (credentials hidden): percent-encode '/', "
                "'?' and '@' in a user name or password (%2F, %3F, %40)"
            ) from None
        raise


def _credentials(url: object) -> str:
    """The ``user:password`` part of a URL (up to its last ``@``), or ``""``."""
    if not isinstance(url, str) or "://" not in url or "@" not in url:
        return ""
    return url.split("://", 1)[1].rpartition("@")[0]


def _fragments(secret: str) -> list[str]:
    """Pieces of ``secret`` a parser may have echoed (split where URLs split)."""
    password = secret.partition(":")[2] or secret
    pieces = [secret, password, *re.split(r"[/?:@&=#,]", password)]
    return [p for p in pieces if len(p) >= 2]


def _parse_store_url(url: str) -> StoreURL:
    from iotlab.store.registry import backend_class

    parts = split_store_url(url)
    try:
        backend = backend_class(parts.scheme)
    except UnknownBackendError as exc:
        raise UnknownBackendError(f"{exc} (in {parts.shown()!r})") from None
    return backend.parse_url(parts)


def split_store_url(url: str) -> URLParts:
    """Split ``url`` into its scheme, credentials, netloc, path and options.

    Examples
    --------
    >>> split_store_url("cassandra://u:p%40ss@h1,h2:9042/iot?dc=dc1")
    URLParts(scheme='cassandra', netloc='h1,h2:9042', path='iot', options={'dc': 'dc1'}, \
username='u')
    >>> split_store_url("sqlite:////abs/x.db").path
    '/abs/x.db'
    """
    if not isinstance(url, str) or "://" not in url:
        from iotlab.store.registry import known_backends

        raise InvalidURLError(
            f"malformed store URL {url!r}: expected 'scheme://...' with a known scheme "
            f"({', '.join(known_backends())}), e.g. 'sqlite:///path.db', 'sqlite://' "
            "or 'cassandra://host[,host...][:port]/keyspace'"
        )
    scheme, rest = url.split("://", 1)
    rest, _, query = rest.partition("?")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as exc:
        raise InvalidURLError(f"malformed query string {query!r} in store URL") from exc
    netloc, _, path = rest.partition("/")
    username = password = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        user, _, pw = auth.partition(":")
        username, password = unquote(user) or None, unquote(pw) or None
    return URLParts(scheme.lower(), netloc, unquote(path), options, username, password, text=url)


def check_options(parts: URLParts, known: dict[str, str]) -> None:
    """Refuse query options of ``parts`` that are not in ``known`` (name -> meaning).

    Examples
    --------
    >>> check_options(split_store_url("sqlite:///x.db?journal=off"), {"timeout": "..."})
    Traceback (most recent call last):
    ...
    iotlab.errors.InvalidURLError: unknown sqlite URL option(s) journal; known: timeout
    """
    unknown = sorted(set(parts.options) - set(known))
    if unknown:
        raise InvalidURLError(
            f"unknown {parts.scheme} URL option(s) {', '.join(unknown)}; "
            f"known: {', '.join(known) or 'none'}"
        )


def __getattr__(name: str) -> object:
    # Moved with the Cassandra URL rules to the backend; kept here one release.
    if name == "CASSANDRA_OPTIONS":
        warnings.warn(
            "iotlab.store.url.CASSANDRA_OPTIONS moved: use "
            "iotlab.store.cassandra.CassandraStore.url_options",
            DeprecationWarning,
            stacklevel=2,
        )
        from iotlab.store._cql_url import CASSANDRA_OPTIONS

        return CASSANDRA_OPTIONS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
