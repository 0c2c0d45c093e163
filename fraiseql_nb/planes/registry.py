"""The planes, registered in one place: what the session builds, the router asks, health
reports, the badge colours, ``--backend`` offers and the docs list.

Each plane's package holds its :class:`~.contract.Registration` (``REGISTRATION``); this module
lists them in the order the router asks them under ``auto`` (the first that answers
now wins; see :mod:`.router`). ``postgres`` is the fallback: it answers what every
other plane passes on. Adding a plane is its folder and one entry in :data:`_BUILT_IN`
(or :func:`register` at run time, as a test does with a toy plane).
"""

from __future__ import annotations

import threading

from fraiseql_nb.errors import ConfigError
from fraiseql_nb.planes import arrow, cluster, postgres, wire
from fraiseql_nb.planes.contract import Context, PlaneName, Registration

__all__ = [
    "FALLBACK",
    "Context",
    "Registration",
    "backends",
    "get",
    "register",
    "registered",
    "runs",
    "unregister",
]

#: The plane that answers what every other plane passes on.
FALLBACK: PlaneName = "postgres"


_lock = threading.Lock()
_planes: dict[str, Registration] = {}


def _built_in() -> None:
    for registration in (
        wire.REGISTRATION,
        arrow.REGISTRATION,
        cluster.REGISTRATION,
        postgres.REGISTRATION,
    ):
        _planes[registration.name] = registration


def registered() -> tuple[Registration, ...]:
    """Every plane, in the order the router asks them."""
    with _lock:
        if not _planes:
            _built_in()
        return tuple(_planes.values())


def get(name: str) -> Registration | None:
    return next((r for r in registered() if r.name == name), None)


def register(registration: Registration) -> None:
    """Add a plane (after those registered already); a Session built afterwards has it."""
    registered()
    with _lock:
        if registration.name in _planes or registration.name == "auto":
            raise ConfigError(f"a plane named {registration.name!r} is registered already")
        _planes[registration.name] = registration


def unregister(name: str) -> None:
    """Remove a plane added by :func:`register` (the fallback stays)."""
    if name == FALLBACK:
        raise ConfigError(f"{FALLBACK!r} is the fallback plane: it stays registered")
    with _lock:
        _planes.pop(name, None)


def backends() -> tuple[str, ...]:
    """What ``execute(backend=…)`` and ``--backend`` take: "auto" or a plane's name."""
    return ("auto", *(r.name for r in registered()))


def runs(name: str, kind: str) -> bool:
    """Whether the plane ``name`` runs a query of ``kind`` ("rows", "aggregate", "window")."""
    registration = get(name)
    return registration is not None and ("rows" if kind == "rows" else "facts") in registration.runs
