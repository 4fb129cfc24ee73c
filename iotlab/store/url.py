"""Store URLs: ``sqlite:///path.db``, ``sqlite://`` and ``cassandra://h1,h2:9042/keyspace``.

Everything is checked here, before any connection is attempted, so a typo fails
fast with a message naming the part at fault.

Examples
--------
>>> url = parse_store_url("cassandra://u:secret@10.0.0.1,10.0.0.2:9042/iot?replication_factor=3")
>>> url.hosts, url.port, url.keyspace, url.options["replication_factor"]
(('10.0.0.1', '10.0.0.2'), 9042, 'iot', '3')
>>> url  # the password is never shown
StoreURL('cassandra://u:***@10.0.0.1,10.0.0.2:9042/iot?replication_factor=3')
>>> parse_store_url("sqlite://").path is None
True
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote

from iotlab.errors import InvalidIdentifierError, InvalidURLError, UnknownBackendError

__all__ = [
    "CASSANDRA_OPTIONS",
    "DEFAULT_STORE_URL",
    "StoreURL",
    "parse_store_url",
    "resolve_store_url",
    "validate_identifier",
]

DEFAULT_STORE_URL = "sqlite:///./.iotlab/iotlab.db"
DEFAULT_CASSANDRA_PORT = 9042
SCHEMES = ("sqlite", "cassandra")

# Query options a cassandra:// URL accepts, with what each means.
CASSANDRA_OPTIONS = {
    "replication_factor": "SimpleStrategy replication factor when creating the keyspace",
    "dc": "local datacenter (DCAwareRoundRobinPolicy); NetworkTopologyStrategy if creating",
    "consistency": "consistency level for reads and writes, e.g. LOCAL_QUORUM",
    "ssl": "true to use TLS",
    "ssl_ca": "path to the CA certificate (PEM) that signed the nodes' certificates",
    "ssl_cert": "path to a client certificate (PEM), for mutual TLS",
    "ssl_key": "path to the client certificate's private key (PEM)",
    "ssl_verify": "false to skip host-name verification (test clusters only)",
    "connect_timeout": "seconds to wait for the first connection",
    "request_timeout": "seconds to wait for one request",
}
SQLITE_OPTIONS = {"timeout": "seconds to wait for a locked database"}

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
_CONSISTENCY_LEVELS = {
    "ANY",
    "ONE",
    "TWO",
    "THREE",
    "QUORUM",
    "ALL",
    "LOCAL_QUORUM",
    "EACH_QUORUM",
    "LOCAL_ONE",
}


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
    """A parsed, validated store URL. ``str()`` gives it back without the password."""

    scheme: str
    hosts: tuple[str, ...] = ()
    port: int | None = None
    keyspace: str | None = None
    path: str | None = None  # sqlite file; None means in memory
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        query = "&".join(f"{k}={quote(v)}" for k, v in self.options.items())
        query = f"?{query}" if query else ""
        if self.scheme == "sqlite":
            return f"sqlite://{'/' + self.path if self.path else ''}{query}"
        auth = ""
        if self.username:
            auth = quote(self.username) + (":***" if self.password else "") + "@"
        return f"cassandra://{auth}{','.join(self.hosts)}:{self.port}/{self.keyspace}{query}"

    def __repr__(self) -> str:
        return f"StoreURL({str(self)!r})"


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
    if not isinstance(url, str) or "://" not in url:
        raise InvalidURLError(
            f"malformed store URL {url!r}: expected 'sqlite:///path.db', 'sqlite://' "
            "or 'cassandra://host[,host...][:port]/keyspace'"
        )
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise UnknownBackendError(
            f"unknown store scheme {scheme!r} in {url!r}; known: {', '.join(SCHEMES)}"
        )
    rest, _, query = rest.partition("?")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as exc:
        raise InvalidURLError(f"malformed query string {query!r} in store URL") from exc
    if scheme == "sqlite":
        return _parse_sqlite(rest, options)
    return _parse_cassandra(rest, options)


def _check_options(options: dict[str, str], known: dict[str, str], scheme: str) -> None:
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InvalidURLError(
            f"unknown {scheme} URL option(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )


def _parse_sqlite(rest: str, options: dict[str, str]) -> StoreURL:
    _check_options(options, SQLITE_OPTIONS, "sqlite")
    if rest in ("", "/", "/:memory:"):
        return StoreURL("sqlite", options=options)
    if not rest.startswith("/"):
        raise InvalidURLError(
            f"sqlite URL needs three slashes before a path: 'sqlite:///{rest}' "
            f"(relative) or 'sqlite:////abs/{rest}' (absolute)"
        )
    path = unquote(rest[1:])
    if Path(path).is_dir():
        raise InvalidURLError(f"sqlite path {path!r} is a directory, not a database file")
    return StoreURL("sqlite", path=path, options=options)


def _parse_cassandra(rest: str, options: dict[str, str]) -> StoreURL:
    _check_options(options, CASSANDRA_OPTIONS, "cassandra")
    netloc, _, keyspace = rest.partition("/")
    if not keyspace:
        raise InvalidURLError("cassandra URL needs a keyspace: cassandra://host:9042/keyspace")
    validate_identifier(unquote(keyspace), what="keyspace")
    username = password = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        user, _, pw = auth.partition(":")
        username, password = unquote(user) or None, unquote(pw) or None
    username = username or os.environ.get("IOTLAB_CASSANDRA_USERNAME") or None
    password = password or os.environ.get("IOTLAB_CASSANDRA_PASSWORD") or None
    hosts, port = _parse_hosts(netloc)
    _check_cassandra_option_values(options)
    return StoreURL(
        "cassandra",
        hosts=hosts,
        port=port,
        keyspace=unquote(keyspace),
        username=username,
        password=password,
        options=options,
    )


def _parse_hosts(netloc: str) -> tuple[tuple[str, ...], int]:
    port = DEFAULT_CASSANDRA_PORT
    hosts = []
    for item in netloc.split(","):
        host, sep, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        if sep:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise InvalidURLError(f"invalid port {port_text!r} in cassandra URL")
            port = int(port_text)
        if not host or not re.match(r"^[A-Za-z0-9_.\-]+$", host):
            raise InvalidURLError(f"invalid host {host!r} in cassandra URL")
        hosts.append(host)
    return tuple(hosts), port


def _check_cassandra_option_values(options: dict[str, str]) -> None:
    rf = options.get("replication_factor")
    if rf is not None and (not rf.isdigit() or int(rf) < 1):
        raise InvalidURLError(f"replication_factor must be a positive integer, got {rf!r}")
    level = options.get("consistency")
    if level is not None and level.upper() not in _CONSISTENCY_LEVELS:
        raise InvalidURLError(
            f"unknown consistency {level!r}; one of {', '.join(sorted(_CONSISTENCY_LEVELS))}"
        )
    if "dc" in options:
        validate_identifier(options["dc"].replace("-", "_"), what="datacenter name")
    for flag in ("ssl", "ssl_verify"):
        if flag in options and options[flag].lower() not in ("true", "false", "1", "0"):
            raise InvalidURLError(f"{flag} must be true or false, got {options[flag]!r}")
    for name in ("connect_timeout", "request_timeout"):
        if name in options:
            try:
                if float(options[name]) <= 0:
                    raise ValueError
            except ValueError:
                raise InvalidURLError(
                    f"{name} must be a positive number of seconds, got {options[name]!r}"
                ) from None
