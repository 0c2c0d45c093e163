"""Configuration: ``fraiseql.toml``, a dict, and ``FRAISEQL_*`` environment overrides.

Precedence, lowest first: defaults, the file (``$FRAISEQL_CONFIG``, else
``./fraiseql.toml`` when present) or the dict given to ``fq.connect``, then
environment variables ``FRAISEQL_<SECTION>_<KEY>`` (e.g.
``FRAISEQL_WIRE_BACKEND_POOL_SIZE=8``). An unknown section or key, a value
of the wrong type or out of range raises ConfigError naming the key and
where it came from. ``examples/fraiseql.toml`` documents every key.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fraiseql_nb.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "ArrowBackendConfig",
    "BackendsConfig",
    "ClusterConfig",
    "Config",
    "DatabaseConfig",
    "LimitsConfig",
    "RoutingConfig",
    "ServerConfig",
    "WireBackendConfig",
    "load_config",
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
    """

    max_result_mb: int = field(default=0, metadata=_range(0, 1_048_576))

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


_SECTIONS = {
    "database": DatabaseConfig,
    "backends": BackendsConfig,
    "connections": ConnectionsConfig,
    "wire_backend": WireBackendConfig,
    "arrow_backend": ArrowBackendConfig,
    "routing": RoutingConfig,
    "server": ServerConfig,
    "cluster": ClusterConfig,
    "limits": LimitsConfig,
}


def load_config(
    config: str | os.PathLike[str] | dict[str, Any] | Config | None = None,
    *,
    environ: dict[str, str] | None = None,
) -> Config:
    """Build the configuration.

    Args:
        config: a TOML file path, a dict with the same sections, a Config, or
            None for ``$FRAISEQL_CONFIG`` / ``./fraiseql.toml`` / defaults.
        environ: the environment to read overrides from (default ``os.environ``).
    """
    env = os.environ if environ is None else environ
    if config is not None and not isinstance(config, (Config, dict, str, os.PathLike)):
        raise ConfigError(
            f"config must be a fraiseql.toml path, a dict or a Config, not {type(config).__name__}",
            key="config",
        )
    if isinstance(config, Config):
        base = config
    elif isinstance(config, dict):
        base = _from_mapping(config, "the config dict")
    else:
        path = config if config is not None else env.get(ENV_CONFIG)
        if path is None and Path(DEFAULT_FILE).is_file():
            path = DEFAULT_FILE
        base = _from_file(Path(path)) if path is not None else Config()
    return _apply_env(base, env)


def _from_file(path: Path) -> Config:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist", source=str(path)) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}", source=str(path)
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", source=str(path)) from None
    return _from_mapping(data, str(path))


def _from_mapping(data: dict[str, Any], source: str) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections", source=source)
    data = _moved(data, source)
    sections: dict[str, Any] = {}
    for name, values in data.items():
        cls = _SECTIONS.get(name)
        if cls is None:
            raise ConfigError(
                f"{source}: unknown section [{name}] (known: {', '.join(_SECTIONS)})",
                key=name,
                source=source,
            )
        if not isinstance(values, dict):
            raise ConfigError(
                f"{source}: [{name}] must be a table of keys", key=name, source=source
            )
        sections[name] = _section(cls, name, values, source)
    return Config(**sections, source=source)


# Keys that moved to the section named for what they govern: the old spelling still
# works, with a warning (a file written for an earlier version keeps loading).
_MOVED = {f"wire_backend.{f.name}": ("connections", f.name) for f in fields(ConnectionsConfig)}


def _moved(data: dict[str, Any], source: str) -> dict[str, Any]:
    """``data`` with moved keys under their new section (checked under the name the user
    wrote, so an error names it); the new spelling wins where both are given."""
    old = data.get("wire_backend")
    if not isinstance(old, dict) or not any(f"wire_backend.{k}" in _MOVED for k in old):
        return data
    out = {**data, "wire_backend": dict(old)}
    target = out.get("connections", {})
    target = dict(target) if isinstance(target, dict) else target
    known = {f.name: f for f in fields(ConnectionsConfig)}
    keys = [key for key in old if f"wire_backend.{key}" in _MOVED]
    for key in keys:
        _, name = _MOVED[f"wire_backend.{key}"]
        value = _check(known[name], "wire_backend", key, old[key], source)
        del out["wire_backend"][key]
        if isinstance(target, dict):
            target.setdefault(name, value)
    out["connections"] = target
    listed = ", ".join(keys)
    warnings.warn(
        f"{source}: [wire_backend] {listed} {'is' if len(keys) == 1 else 'are'} now in"
        " [connections] (the keys govern every plane's connections); the old place"
        " still works",
        DeprecationWarning,
        stacklevel=_outside(),
    )
    return out


# Keys that did nothing and were removed: still accepted, with a warning saying why.
_RETIRED = {
    "arrow_backend.parallel_execution": "Polars always uses every core; set"
    " POLARS_MAX_THREADS before Python starts to use fewer",
}


def _section(cls: type, section: str, values: dict[str, Any], source: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in values.items():
        retired = _RETIRED.get(f"{section}.{key}")
        if retired is not None:
            warnings.warn(f"{source}: {section}.{key} is ignored: {retired}", stacklevel=4)
            continue
        if key not in known:
            raise ConfigError(
                f"{source}: unknown key {section}.{key} (known: {', '.join(known)})",
                key=f"{section}.{key}",
                source=source,
            )
        kwargs[key] = _check(known[key], section, key, value, source)
    return cls(**kwargs)


def _check(f: Any, section: str, key: str, value: Any, source: str) -> Any:
    name = f"{section}.{key}"
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "str | None": value is None or isinstance(value, str),
        "tuple[str, ...]": isinstance(value, (list, tuple))
        and all(isinstance(v, str) for v in value),
    }[kind]
    if not ok:
        want = {
            "str | None": "text",
            "bool": "true or false",
            "int": "a whole number",
            "float": "a number",
            "str": "text",
            "tuple[str, ...]": "a list of text",
        }[kind]
        shown = repr(value) if f.repr else "a value not shown (it may hold a secret)"
        raise ConfigError(f"{source}: {name} must be {want}, got {shown}", key=name, source=source)
    low_high = f.metadata.get("range")
    if low_high is not None and not low_high[0] <= value <= low_high[1]:
        raise ConfigError(
            f"{source}: {name} must be between {low_high[0]:,} and {low_high[1]:,}, got {value!r}",
            key=name,
            source=source,
        )
    if kind == "tuple[str, ...]":
        return tuple(value)
    return float(value) if kind == "float" else value


def _apply_env(base: Config, env: dict[str, str] | os._Environ[str]) -> Config:
    out = base
    for section, cls in _SECTIONS.items():
        prefix = f"FRAISEQL_{section.upper()}_"
        changes = {}
        for f in fields(cls):
            var = prefix + f.name.upper()
            if var not in env:
                var = _moved_env(section, f.name, env)
                if var is None:
                    continue
            changes[f.name] = _check(f, section, f.name, _parse_env(env[var], f), var)
        if changes:
            out = replace(out, **{section: replace(getattr(out, section), **changes)})
    return out


def _outside() -> int:
    """The ``stacklevel`` of the first caller outside this package, for a warning raised
    in the function calling this one: it points at the user's own line."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


_PACKAGE = str(Path(__file__).resolve().parent)


def _moved_env(section: str, name: str, env: dict[str, str] | os._Environ[str]) -> str | None:
    """The variable of a moved key's old spelling when only it is set (with a warning)."""
    for old, (new_section, new_name) in _MOVED.items():
        if (new_section, new_name) != (section, name):
            continue
        var = "FRAISEQL_" + old.replace(".", "_").upper()
        if var in env:
            warnings.warn(
                f"{var} is now FRAISEQL_{section.upper()}_{name.upper()}; the old name still works",
                DeprecationWarning,
                stacklevel=4,
            )
            return var
    return None


def _parse_env(text: str, f: Any) -> Any:
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        return text
    if kind == "tuple[str, ...]":  # FRAISEQL_SERVER_ALLOWED_HOSTS=a.example,b.example
        return [part.strip() for part in text.split(",") if part.strip()]
    if kind in ("int", "float"):
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            return text
    return text
