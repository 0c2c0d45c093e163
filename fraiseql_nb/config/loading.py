"""Building a :class:`~.model.Config`: from a TOML file or a dict, then ``FRAISEQL_*``
environment overrides, every value checked against its field (ConfigError naming the key
and where it came from); keys that moved sections still read, with a deprecation
warning pointing at the caller."""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from fraiseql_nb.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from fraiseql_nb.config.model import (
    DEFAULT_FILE,
    ENV_CONFIG,
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
)

__all__ = ["load_config"]


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


_PACKAGE = str(Path(__file__).resolve().parents[1])


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
