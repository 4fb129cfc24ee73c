"""What a ``cassandra://h1,h2:9042/keyspace?options`` URL may say, checked before any I/O.

:meth:`iotlab.store.cassandra.CassandraStore.parse_url` calls :func:`parse_cassandra_url`
on the parts :func:`iotlab.store.url.split_store_url` found. No driver import here.

Examples
--------
>>> from iotlab.store.url import split_store_url
>>> parse_cassandra_url(split_store_url("cassandra://h1,h2/iot"))
StoreURL('cassandra://h1,h2:9042/iot')
>>> parse_cassandra_url(split_store_url("cassandra://h/iot?consistency=SOMETIMES"))
Traceback (most recent call last):
...
iotlab.errors.InvalidURLError: unknown consistency 'SOMETIMES'; one of ALL, ANY, ...
"""

from __future__ import annotations

import os
import re

from iotlab.errors import InvalidURLError
from iotlab.store.url import StoreURL, URLParts, check_options, validate_identifier

__all__ = ["CASSANDRA_OPTIONS", "DEFAULT_CASSANDRA_PORT", "parse_cassandra_url"]

DEFAULT_CASSANDRA_PORT = 9042

#: Query options a cassandra:// URL accepts, with what each means.
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


def parse_cassandra_url(parts: URLParts) -> StoreURL:
    """Check a split ``cassandra://`` URL; credentials default to the environment's.

    ``IOTLAB_CASSANDRA_USERNAME`` / ``IOTLAB_CASSANDRA_PASSWORD`` are used where the URL
    names no user or password, so neither needs to be written in a notebook.
    """
    check_options(parts, CASSANDRA_OPTIONS)
    if not parts.path:
        raise InvalidURLError(
            f"{parts.scheme} URL needs a keyspace: {parts.scheme}://host:9042/keyspace"
        )
    keyspace = validate_identifier(parts.path, what="keyspace")
    username = parts.username or os.environ.get("IOTLAB_CASSANDRA_USERNAME") or None
    password = parts.password or os.environ.get("IOTLAB_CASSANDRA_PASSWORD") or None
    hosts, port = _parse_hosts(parts.netloc, parts.scheme)
    _check_option_values(parts.options)
    return StoreURL(
        parts.scheme,
        hosts=hosts,
        port=port,
        keyspace=keyspace,
        username=username,
        password=password,
        options=parts.options,
    )


def _parse_hosts(netloc: str, scheme: str) -> tuple[tuple[str, ...], int]:
    port = DEFAULT_CASSANDRA_PORT
    hosts = []
    for item in netloc.split(","):
        host, sep, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        if sep:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise InvalidURLError(f"invalid port {port_text!r} in {scheme} URL")
            port = int(port_text)
        if not host or not re.match(r"^[A-Za-z0-9_.\-]+$", host):
            raise InvalidURLError(f"invalid host {host!r} in {scheme} URL")
        hosts.append(host)
    return tuple(hosts), port


def _check_option_values(options: dict[str, str]) -> None:
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
