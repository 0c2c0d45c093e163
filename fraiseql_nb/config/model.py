"""The settings, as frozen dataclasses: one per section of ``fraiseql.toml``, each key's
default, type and range (``_range``), and :class:`Config`, all of them."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from fraiseql_nb.errors import ConfigError

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover - Python 3.10
    pass

__all__ = [
    "DEFAULT_FILE",
    "ENV_CONFIG",
    "ENV_REGRESSION",
    "LOOPBACK_HOSTS",
    "ArrowBackendConfig",
    "BackendsConfig",
    "ClusterConfig",
    "Config",
    "ConnectionsConfig",
    "DatabaseConfig",
    "LimitsConfig",
    "RoutingConfig",
    "ServerConfig",
    "WireBackendConfig",
    "regression_mode",
]

ENV_CONFIG = "FRAISEQL_CONFIG"
ENV_REGRESSION = "FRAISEQL_REGRESSION"  # regression notebooks: outputs that do not vary
DEFAULT_FILE = "fraiseql.toml"


def regression_mode() -> bool:
    """Whether ``$FRAISEQL_REGRESSION`` asks for regression mode (set, and not "0")."""
    return os.environ.get(ENV_REGRESSION, "") not in ("", "0")


def _range(low: float, high: float) -> dict[str, Any]:
    return {"range": (low, high)}


@dataclass(frozen=True, kw_only=True)
class DatabaseConfig:
    """Where to connect. ``analytics_connection`` lets the analytics plane read a replica."""

    standard_connection: str | None = None
    analytics_connection: str | None = None

    def __repr__(self) -> str:  # the DSNs may carry passwords
        from fraiseql_nb.pg.conninfo import mask_dsn

        shown = {
            name: None if dsn is None else mask_dsn(dsn)
            for name, dsn in (
                ("standard_connection", self.standard_connection),
                ("analytics_connection", self.analytics_connection),
            )
        }
        return "DatabaseConfig(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


@dataclass(frozen=True, kw_only=True)
class BackendsConfig:
    """Which planes may run. With a plane off, its queries take the fallback path."""

    use_wire_backend: bool = True
    use_arrow_backend: bool = True


@dataclass(frozen=True, kw_only=True)
class ConnectionsConfig:
    """Every connection to PostgreSQL, whichever plane makes it: the pool, TLS and the
    timeouts (until 0.x these keys were in ``[wire_backend]``, which still takes them)."""

    pool_size: int = field(default=16, metadata=_range(1, 256))
    enable_tls: bool = False
    statement_timeout_ms: int = field(default=300_000, metadata=_range(0, 86_400_000))
    pool_timeout_s: float = field(default=30.0, metadata=_range(0.01, 3600))
    connect_timeout_s: int = field(default=10, metadata=_range(1, 600))


@dataclass(frozen=True, kw_only=True)
class WireBackendConfig:
    """The row plane's streaming."""

    chunk_size: int = field(default=256, metadata=_range(1, 1_000_000))


@dataclass(frozen=True, kw_only=True)
class ArrowBackendConfig:
    """The analytics plane: loaded columns in memory, and persisted on disk between sessions."""

    cache_enabled: bool = True
    cache_size_mb: int = field(default=1024, metadata=_range(0, 1_048_576))
    cache_ttl_s: float = field(default=0.0, metadata=_range(0, 31_536_000))
    exact_decimals: bool = True
    store_enabled: bool = True
    store_dir: str = ""  # default: $FRAISEQL_HOME/store
    store_size_mb: int = field(default=0, metadata=_range(0, 1_048_576))  # 0: half the free disk
    memory_mb: int = field(default=1024, metadata=_range(0, 1_048_576))  # beyond: from disk
    load_connections: int = field(default=0, metadata=_range(0, 64))  # 0: from the cores
    change_capture: bool = True  # logical decoding where the server offers it (else a scan)
    publication: str = ""  # an existing publication of the fact tables ("": one per table)


@dataclass(frozen=True, kw_only=True)
class RoutingConfig:
    """How ``backend="auto"`` chooses between the arrow and postgres planes."""

    max_load_mb: float = field(default=float("inf"), metadata=_range(0, float("inf")))
    min_rows_for_arrow: int = field(default=0, metadata=_range(0, 10**12))
    timezone: str = "UTC"
    background_loads: bool = True
    wait_for_load_s: float = field(default=5.0, metadata=_range(0, 3600))


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    """The cluster plane (Ray): where the cluster is, and the replicas its workers may read.

    ``address``: "" (no cluster plane), "local" (start a Ray on this machine), "auto" (the
    Ray already running here, or ``$RAY_ADDRESS``), "host:port" (a cluster's head) or
    "ray://host:10001" (Ray Client).
    """

    address: str = ""
    replicas: tuple[str, ...] = field(default=(), repr=False)  # DSNs: may carry passwords
    partitions: int = field(default=0, metadata=_range(0, 4096))  # 0: 2 per worker CPU
    num_cpus: int = field(default=0, metadata=_range(0, 4096))  # "local": 0 = every core
    connect_timeout_s: float = field(default=5.0, metadata=_range(0.1, 600))

    def __post_init__(self) -> None:
        a = self.address
        if a in ("", "local", "auto") or a.startswith("ray://") or _host_port(a):
            return
        raise ConfigError(
            f'cluster.address must be "local", "auto", "host:port" or "ray://host:port", got {a!r}',
            key="cluster.address",
        )


def _host_port(text: str) -> bool:
    host, _, port = text.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


@dataclass(frozen=True, kw_only=True)
class LimitsConfig:
    """What one request may cost, whatever asks (Python, a notebook cell, HTTP).

    ``max_result_mb``: the memory the buffered results of one request (all its root
    fields) may hold; 0 is a quarter of this machine's memory, at most 2 GiB
    (:func:`fraiseql_nb.ops.budget.auto_result_mb`). ``stream()`` is not bounded by it.
    ``max_expression_chars``: the longest ``calc`` expression a query may hold.
    """

    max_result_mb: int = field(default=0, metadata=_range(0, 1_048_576))
    # The longest calc expression (``calc(expr: "…")``) a query may hold.
    max_expression_chars: int = field(default=1000, metadata=_range(1, 1_000_000))

    def result_mb(self) -> int:
        """The limit in force (``max_result_mb``, or the automatic one for 0)."""
        from fraiseql_nb.ops.budget import auto_result_mb

        return self.max_result_mb or auto_result_mb()


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """``fraiseql-nb serve``: who may call it and what one request may cost."""

    token: str | None = field(default=None, repr=False)  # bearer; required beyond loopback
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS  # Host header values ("*": any)
    allowed_origins: tuple[str, ...] = ()  # browser origins allowed to call (CORS)
    max_body_bytes: int = field(default=1_048_576, metadata=_range(1024, 1_073_741_824))
    max_url_bytes: int = field(default=65_536, metadata=_range(1024, 16_777_216))
    max_root_fields: int = field(default=32, metadata=_range(1, 10_000))
    max_fields: int = field(default=2_000, metadata=_range(1, 1_000_000))
    max_depth: int = field(default=12, metadata=_range(1, 1_000))
    max_list_length: int = field(default=10_000, metadata=_range(1, 10_000_000))
    header_timeout_s: float = field(default=10.0, metadata=_range(0.1, 3600))
    body_timeout_s: float = field(default=30.0, metadata=_range(0.1, 3600))
    keepalive_timeout_s: int = field(default=5, metadata=_range(1, 3600))
    max_connections: int = field(default=64, metadata=_range(1, 100_000))
    # What one request may cost, and one client hold (0: a quarter of max_connections,
    # half of [wire_backend] pool_size).
    max_request_s: float = field(default=30.0, metadata=_range(0.1, 86_400))
    max_client_connections: int = field(default=0, metadata=_range(0, 100_000))
    max_client_requests: int = field(default=0, metadata=_range(0, 100_000))
    access_log: bool = True

    def client_connections(self) -> int:
        """Unused connections one client address keeps when the server is full."""
        return self.max_client_connections or max(1, self.max_connections // 4)


@dataclass(frozen=True, kw_only=True)
class Config:
    """All settings. Build with :func:`load_config`; immutable."""

    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    backends: BackendsConfig = field(default_factory=BackendsConfig)
    connections: ConnectionsConfig = field(default_factory=ConnectionsConfig)
    wire_backend: WireBackendConfig = field(default_factory=WireBackendConfig)
    arrow_backend: ArrowBackendConfig = field(default_factory=ArrowBackendConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    source: str = "defaults"
