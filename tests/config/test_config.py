"""Configuration: file, dict, environment; every bad key or value named with its source."""

from __future__ import annotations

from pathlib import Path

import pytest

import fraiseql_nb as fq
from fraiseql_nb.config import Config, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fraiseql.toml"


def test_defaults() -> None:
    cfg = load_config(None, environ={})
    assert cfg.connections.pool_size == 16
    assert cfg.wire_backend.chunk_size == 256
    assert cfg.arrow_backend.cache_size_mb == 1024
    assert cfg.backends.use_wire_backend
    assert cfg.backends.use_arrow_backend
    assert cfg.source == "defaults"


def test_file_dict_and_environment_precedence(tmp_path: Path) -> None:
    path = tmp_path / "fraiseql.toml"
    path.write_text(
        "[connections]\npool_size = 4\n[wire_backend]\nchunk_size = 64\n"
        "[backends]\nuse_arrow_backend = false\n"
    )
    cfg = load_config(path, environ={"FRAISEQL_WIRE_BACKEND_CHUNK_SIZE": "1000"})
    assert (cfg.connections.pool_size, cfg.wire_backend.chunk_size) == (4, 1000)
    assert cfg.backends.use_arrow_backend is False
    assert cfg.source == str(path)
    from_dict = load_config({"connections": {"statement_timeout_ms": 5}}, environ={})
    assert from_dict.connections.statement_timeout_ms == 5
    from_env = load_config(None, environ={"FRAISEQL_CONFIG": str(path)})
    assert from_env.connections.pool_size == 4


def test_the_connection_keys_of_wire_backend_still_work_with_a_warning(tmp_path: Path) -> None:
    """[connections] took over the keys that govern every plane's connections; a file,
    a dict or a variable written for [wire_backend] keeps working and is told where the
    key went. Where both spellings are given, the new one wins."""
    path = tmp_path / "old.toml"
    path.write_text("[wire_backend]\npool_size = 4\nchunk_size = 64\nenable_tls = true\n")
    moved = r"\[wire_backend\] pool_size, enable_tls are now in \[connections\]"
    with pytest.warns(DeprecationWarning, match=moved):
        cfg = load_config(path, environ={})
    assert (cfg.connections.pool_size, cfg.connections.enable_tls) == (4, True)
    assert cfg.wire_backend.chunk_size == 64
    both = {"wire_backend": {"pool_size": 4}, "connections": {"pool_size": 9}}
    with pytest.warns(DeprecationWarning, match=r"pool_size is now in \[connections\]"):
        assert load_config(both, environ={}).connections.pool_size == 9
    old_env = {"FRAISEQL_WIRE_BACKEND_STATEMENT_TIMEOUT_MS": "7"}
    with pytest.warns(DeprecationWarning, match="FRAISEQL_CONNECTIONS_STATEMENT_TIMEOUT_MS"):
        assert load_config(None, environ=old_env).connections.statement_timeout_ms == 7
    new_env = {**old_env, "FRAISEQL_CONNECTIONS_STATEMENT_TIMEOUT_MS": "8"}
    assert load_config(None, environ=new_env).connections.statement_timeout_ms == 8


def test_the_example_file_documents_every_key_with_its_default() -> None:
    cfg = load_config(EXAMPLE, environ={})
    assert cfg == Config(source=str(EXAMPLE))  # every value in the example is the default
    text = EXAMPLE.read_text()
    for section, spec in Config.__dataclass_fields__.items():
        if section == "source":
            continue
        assert f"[{section}]" in text
        for key in spec.default_factory.__dataclass_fields__:  # type: ignore[attr-defined]
            assert f"\n{key} = " in text or f"\n# {key} = " in text, f"{section}.{key}"


def test_a_retired_key_is_ignored_with_a_warning_saying_why(tmp_path: Path) -> None:
    path = tmp_path / "old.toml"
    path.write_text("[arrow_backend]\nparallel_execution = true\ncache_size_mb = 7\n")
    with pytest.warns(UserWarning, match="parallel_execution is ignored: Polars always uses"):
        cfg = load_config(path, environ={})
    assert cfg.arrow_backend.cache_size_mb == 7


def test_server_lists_come_from_toml_lists_or_comma_separated_variables() -> None:
    cfg = load_config(
        {"server": {"allowed_hosts": ["api.example"]}},
        environ={"FRAISEQL_SERVER_ALLOWED_ORIGINS": "https://a.example, https://b.example"},
    )
    assert cfg.server.allowed_hosts == ("api.example",)
    assert cfg.server.allowed_origins == ("https://a.example", "https://b.example")
    with pytest.raises(fq.ConfigError, match=r"server\.allowed_hosts must be a list of text"):
        load_config({"server": {"allowed_hosts": "api.example"}}, environ={})


def test_a_config_repr_shows_no_password_nor_token() -> None:
    cfg = load_config(
        {"database": {"standard_connection": "postgresql://u:Sekr3t!@h/db"}},
        environ={"FRAISEQL_SERVER_TOKEN": "T0kenValue"},
    )
    assert cfg.server.token == "T0kenValue"
    shown = repr(cfg)
    assert "Sekr3t" not in shown and "T0kenValue" not in shown
    assert "postgresql://u:***@h/db" in shown


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "[wire_backend]\nchunk_size = 0\n",
            "wire_backend.chunk_size must be between 1 and 1,000,000, got 0",
        ),
        (
            "[wire_backend]\npool_size = 100000\n",
            "wire_backend.pool_size must be between 1 and 256",
        ),
        (
            "[connections]\npool_size = 100000\n",
            "connections.pool_size must be between 1 and 256",
        ),
        (
            '[wire_backend]\npool_size = "8"\n',
            "wire_backend.pool_size must be a whole number, got '8'",
        ),
        ("[wire_backend]\npoolsize = 8\n", "unknown key wire_backend.poolsize"),
        ("[wires]\npool_size = 8\n", "unknown section [wires]"),
        ("[backends]\nuse_wire_backend = 1\n", "backends.use_wire_backend must be true or false"),
        ("[wire_backend\n", "not valid TOML"),
    ],
)
def test_bad_files_name_the_key_and_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(fq.ConfigError) as info:
        load_config(path, environ={})
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_bad_environment_values_name_the_variable() -> None:
    with pytest.raises(
        fq.ConfigError,
        match=r"FRAISEQL_WIRE_BACKEND_CHUNK_SIZE: wire_backend\.chunk_size must be a whole number, got 'many'",
    ):
        load_config(None, environ={"FRAISEQL_WIRE_BACKEND_CHUNK_SIZE": "many"})


def test_missing_file() -> None:
    with pytest.raises(fq.ConfigError, match="does not exist"):
        load_config("/nonexistent/fraiseql.toml", environ={})
