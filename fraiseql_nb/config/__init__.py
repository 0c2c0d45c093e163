"""Configuration: ``fraiseql.toml``, a dict, and ``FRAISEQL_*`` environment overrides.

Precedence, lowest first: defaults, the file (``$FRAISEQL_CONFIG``, else
``./fraiseql.toml`` when present) or the dict given to ``fq.connect``, then
environment variables ``FRAISEQL_<SECTION>_<KEY>`` (e.g.
``FRAISEQL_WIRE_BACKEND_POOL_SIZE=8``). An unknown section or key, a value
of the wrong type or out of range raises ConfigError naming the key and
where it came from. ``examples/fraiseql.toml`` documents every key.
"""

from fraiseql_nb.config.loading import load_config
from fraiseql_nb.config.model import (
    DEFAULT_FILE,
    ENV_CONFIG,
    ENV_REGRESSION,
    LOOPBACK_HOSTS,
    ArrowBackendConfig,
    BackendsConfig,
    ClusterConfig,
    Config,
    ConnectionsConfig,
    DatabaseConfig,
    LimitsConfig,
    RoutingConfig,
    ServerConfig,
    WireBackendConfig,
    regression_mode,
)

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
    "load_config",
    "regression_mode",
]
