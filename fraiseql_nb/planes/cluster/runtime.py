"""Joining Ray, once per process, and the cluster plane's Ray tasks.

``[cluster] address``: "local" starts a Ray on this machine (development, tests);
"auto" joins the one running here (or ``$RAY_ADDRESS``); "host:port" a cluster's
head; "ray://host:port" through Ray Client. A Ray the process already joined is
used as it is. An address that does not answer is probed first (Ray itself would
retry for minutes): the session goes on without the plane, with one warning.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from fraiseql_nb.config import ClusterConfig

__all__ = ["Joined", "answering", "cluster_available", "join", "tasks", "workers"]

_lock = threading.Lock()
NAMESPACE = "fraiseql-nb"


def cluster_available() -> bool:
    """Whether Ray imports (the ``[cluster]`` extra is installed)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Joined:
    """The outcome of joining: ``error`` says why not."""

    ok: bool
    error: str = ""


def join(config: ClusterConfig) -> Joined:
    """Join (or start) the configured Ray; never raises."""
    if not cluster_available():
        return Joined(False, "Ray is not installed: pip install 'fraiseql-nb[cluster]'")
    import ray

    address = config.address
    silent = _silent(address, config.connect_timeout_s)
    if silent:
        return Joined(False, silent)
    with _lock:
        if ray.is_initialized():
            return Joined(True)  # one Ray per process: the one joined already
        kwargs: dict[str, Any] = {
            "namespace": NAMESPACE,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
        }
        if address == "local":
            kwargs["num_cpus"] = config.num_cpus or None
        else:
            kwargs["address"] = address
        try:
            ray.init(**kwargs)
        except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; all mean "not joined"
            return Joined(False, f"joining the Ray cluster at {address} failed: {exc}")
    return Joined(True)


def answering(config: ClusterConfig) -> str:
    """ "" when the joined Ray still answers, else why not: a started ("local") or found
    ("auto") Ray must still be joined; an address's port must accept a connection
    within a second."""
    import ray

    if not ray.is_initialized():
        return "Ray is no longer running in this process"
    return _silent(config.address, min(1.0, config.connect_timeout_s))


def _silent(address: str, timeout: float) -> str:
    """Why the cluster at ``address`` does not answer a connection within ``timeout``, or
    "" ("local" and "auto" have no address to probe). Ray itself would retry for minutes."""
    probe = address[len("ray://") :] if address.startswith("ray://") else address
    if probe not in ("local", "auto") and not _answers(probe, timeout):
        return f"the Ray cluster at {address} does not answer"
    return ""


def _answers(host_port: str, timeout: float) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def workers() -> tuple[int, int]:
    """Alive nodes, and their CPUs."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = sum(int(n.get("Resources", {}).get("CPU", 0)) for n in nodes)
    return len(nodes), cpus


@lru_cache(maxsize=1)
def tasks() -> SimpleNamespace:
    """The plane's Ray tasks. A worker dying mid-task is retried (Ray's ``max_retries``);
    an error the task raises (permission, bad data) is not: it is the answer."""
    import ray

    from fraiseql_nb.planes.cluster import work

    return SimpleNamespace(
        load=ray.remote(max_retries=3, scheduling_strategy="SPREAD")(work.load_partition),
        part=ray.remote(max_retries=3)(work.compute_part),
        split=ray.remote(max_retries=3)(work.split_part),
        reduce=ray.remote(max_retries=3)(work.reduce_bucket),
    )
