"""Open a Cassandra cluster from a :class:`~iotlab.store.url.StoreURL`.

Everything the URL says becomes one execution profile (the driver's current
configuration API, so no legacy-setting warnings fire): token-aware routing over
a DC-aware round robin, the consistency level (``LOCAL_QUORUM`` unless the URL says
otherwise: on RF=3 that survives one node down), the serial consistency of the event
store's lightweight transactions (``LOCAL_SERIAL`` with ``dc=``, else ``SERIAL``), the
request timeout and a retry policy that retries idempotent writes on a write timeout
(the driver's default rethrows them, so a busy node stopped a large ingest). TLS, auth
and the connect timeout go to the ``Cluster``. A ``dc=`` that names no datacenter of
the cluster is an error that lists the ones it has. The protocol version is pinned to v5
(Cassandra 4.0+) so the driver never negotiates down with a warning.

The driver is imported here, lazily: ``iotlab.store`` imports this module only
for ``cassandra://`` URLs.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from iotlab.errors import (
    InvalidURLError,
    MissingDependencyError,
    StoreConnectionError,
    StoreUnavailableError,
)
from iotlab.store._cql_numpy_fix import patch_numpy_parser
from iotlab.store.url import StoreURL

__all__ = ["Connection", "connect_cluster", "import_driver", "retry_policy"]

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_REQUEST_TIMEOUT = 30.0
BULK_PROFILE = "iotlab_bulk"
#: seconds to wait for the nodes to agree on the schema after a DDL statement
SCHEMA_AGREEMENT_WAIT = 60.0
#: times an idempotent request is retried after a write or read timeout, or Unavailable
RETRIES = 5


def import_driver() -> Any:
    """Import ``cassandra`` or raise ``MissingDependencyError`` naming the package."""
    try:
        import cassandra
        import cassandra.cluster
        import cassandra.policies
    except ImportError as exc:  # pragma: no cover - the dev env has the driver
        # A core dependency (no extra brings it): only a broken environment lacks it.
        raise MissingDependencyError("cassandra-driver") from exc
    return cassandra


@dataclass
class Connection:
    """An open cluster with its two sessions.

    ``session`` returns ordinary rows; ``bulk`` decodes each result page into NumPy
    arrays (the driver's ``NumpyProtocolHandler``), for large reads. The handler is a
    per-session setting, hence a second session rather than a flag per query.
    """

    cluster: Any
    session: Any
    bulk: Any | None
    consistency: int
    serial_consistency: int | None = None


def _flag(options: dict[str, str], name: str, default: bool) -> bool:
    value = options.get(name)
    return default if value is None else value.lower() in ("true", "1")


def ssl_context_from_options(options: dict[str, str]) -> ssl.SSLContext | None:
    """The TLS context the URL asks for (``ssl=true`` or any ``ssl_*`` path), else ``None``.

    Examples
    --------
    >>> ssl_context_from_options({}) is None
    True
    >>> ctx = ssl_context_from_options({"ssl": "true", "ssl_verify": "false"})
    >>> ctx.check_hostname, ctx.verify_mode == ssl.CERT_NONE
    (False, True)
    """
    wanted = _flag(options, "ssl", False) or any(
        options.get(k) for k in ("ssl_ca", "ssl_cert", "ssl_key")
    )
    if not wanted:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if _flag(options, "ssl_verify", True):
        if options.get("ssl_ca"):
            with _tls_file("ssl_ca", options["ssl_ca"]):
                context.load_verify_locations(options["ssl_ca"])
        else:
            context.load_default_certs()
    else:  # test clusters with self-signed certificates only
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.get("ssl_cert"):
        option = "ssl_cert" if not options.get("ssl_key") else "ssl_cert/ssl_key"
        with _tls_file(option, options["ssl_cert"]):
            context.load_cert_chain(options["ssl_cert"], options.get("ssl_key"))
    return context


@contextlib.contextmanager
def _tls_file(option: str, path: str) -> Iterator[None]:
    """Name the URL option whose file is missing or unreadable, not just the OS error.

    Examples
    --------
    >>> ssl_context_from_options({"ssl_ca": "/nowhere/ca.pem"})
    Traceback (most recent call last):
    ...
    iotlab.errors.InvalidURLError: ssl_ca: cannot load '/nowhere/ca.pem': No such file or directory
    """
    try:
        yield
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
        raise InvalidURLError(f"{option}: cannot load {path!r}: {reason}") from exc


def _numpy_handler() -> Any | None:
    from cassandra.protocol import NumpyProtocolHandler

    if NumpyProtocolHandler is not None:
        patch_numpy_parser()
    return NumpyProtocolHandler


def retry_policy() -> Any:
    """A driver ``RetryPolicy`` that retries idempotent requests on timeouts.

    The driver asks the policy about a write timeout only for statements marked
    idempotent (every upsert the store sends is; the event store's lightweight
    transactions are not), so retrying them can neither double a row nor re-apply a
    condition. Timeouts are retried on the same coordinator; ``Unavailable`` (too few
    replicas alive) on the next host: a coordinator that still thinks a dead node is up
    may be the one that is wrong.
    """
    from cassandra.policies import RetryPolicy

    class IdempotentRetryPolicy(RetryPolicy):
        # The driver passes these arguments by name: the base class's names are kept.
        def on_write_timeout(
            self, query, consistency, write_type, required_responses, received_responses, retry_num
        ):
            # The same coordinator: it timed out waiting for replicas, and on one node it
            # is the only host there is (a next-host retry would end the query plan).
            return (self.RETRY, consistency) if retry_num < RETRIES else (self.RETHROW, None)

        def on_read_timeout(
            self,
            query,
            consistency,
            required_responses,
            received_responses,
            data_retrieved,
            retry_num,
        ):
            return (self.RETRY, consistency) if retry_num < RETRIES else (self.RETHROW, None)

        def on_unavailable(self, query, consistency, required_replicas, alive_replicas, retry_num):
            if retry_num < RETRIES:
                return self.RETRY_NEXT_HOST, None
            return self.RETHROW, None

    return IdempotentRetryPolicy()


def connect_cluster(url: StoreURL) -> Connection:
    """Connect to the cluster ``url`` names; raise ``StoreConnectionError`` if it cannot."""
    import_driver()
    from cassandra import AuthenticationFailed, ConsistencyLevel, ProtocolVersion
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
    from cassandra.policies import (
        DCAwareRoundRobinPolicy,
        ExponentialReconnectionPolicy,
        TokenAwarePolicy,
    )
    from cassandra.query import tuple_factory

    options = url.options
    dc = options.get("dc")
    consistency = ConsistencyLevel.name_to_value[
        options.get("consistency", "LOCAL_QUORUM").upper()
    ]
    serial = ConsistencyLevel.LOCAL_SERIAL if dc else ConsistencyLevel.SERIAL
    request_timeout = float(options.get("request_timeout", DEFAULT_REQUEST_TIMEOUT))
    connect_timeout = float(options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT))

    def profile() -> Any:
        return ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=dc)),
            consistency_level=consistency,
            serial_consistency_level=serial,
            request_timeout=request_timeout,
            row_factory=tuple_factory,
            retry_policy=retry_policy(),
        )

    auth = None
    if url.username:
        auth = PlainTextAuthProvider(username=url.username, password=url.password or "")
    cluster = Cluster(
        contact_points=list(url.hosts),
        port=url.port or 9042,
        protocol_version=ProtocolVersion.V5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile(), BULK_PROFILE: profile()},
        auth_provider=auth,
        ssl_context=ssl_context_from_options(options),
        connect_timeout=connect_timeout,
        control_connection_timeout=connect_timeout,
        # A node that comes back is used again within seconds (the driver's default
        # waits up to 10 minutes between attempts, far longer than a restart takes).
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=10.0),
        # Creating the schema waits for every node to agree after each DDL statement: on a
        # busy cluster that took longer than the driver's 10 s.
        max_schema_agreement_wait=SCHEMA_AGREEMENT_WAIT,
    )
    where = f"{','.join(url.hosts)}:{url.port}"
    try:
        session = cluster.connect()
        handler = _numpy_handler()
        bulk = None
        if handler is not None:
            bulk = cluster.connect()
            bulk.client_protocol_handler = handler
    except NoHostAvailable as exc:
        if dc:  # no host is "available" when none is in the local datacenter
            _check_datacenter(cluster, dc, where)
        cluster.shutdown()
        errors = exc.errors or {}
        causes = list(errors.values() if isinstance(errors, dict) else errors)
        if any(isinstance(c, AuthenticationFailed) for c in causes):
            raise StoreConnectionError(
                f"Cassandra at {where} refused the credentials of user {url.username!r}"
            ) from exc
        detail = "; ".join(str(c) for c in causes) or str(exc)
        raise StoreUnavailableError(f"cannot reach Cassandra at {where}: {detail}") from exc
    except AuthenticationFailed as exc:
        cluster.shutdown()
        raise StoreConnectionError(
            f"Cassandra at {where} refused the credentials of user {url.username!r}"
        ) from exc
    except Exception as exc:
        cluster.shutdown()
        raise StoreConnectionError(f"cannot connect to Cassandra at {where}: {exc}") from exc
    if dc:
        _check_datacenter(cluster, dc, where)
    return Connection(cluster, session, bulk, consistency, serial)


def _check_datacenter(cluster: Any, dc: str, where: str) -> None:
    """Raise ``InvalidURLError`` if no node is in ``dc`` (the driver would only say that
    no host is available, at the first query)."""
    known = sorted({h.datacenter for h in cluster.metadata.all_hosts() if h.datacenter})
    if known and dc not in known:
        cluster.shutdown()
        raise InvalidURLError(
            f"dc: Cassandra at {where} has no datacenter {dc!r}; its datacenters: "
            f"{', '.join(known) or 'none reported'}"
        )
