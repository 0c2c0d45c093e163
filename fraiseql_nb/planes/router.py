"""Which plane runs a query: a pure decision, returned with its reason.

Policy for ``backend="auto"``:

- row queries run on ``wire``, or, with ``[backends] use_wire_backend =
  false``, through one plain buffered psycopg query (reported as ``postgres``);
- aggregate and window queries run on ``arrow`` when the analytics plane is
  on, its packages import and the columns they need are at hand (in memory,
  or in the persisted store). Otherwise they run on ``postgres`` — at once,
  never waiting for a load — and, when loading the table is estimated at no
  more than ``[routing] max_load_mb`` (and it has at least
  ``min_rows_for_arrow`` rows), the table starts loading in the background;
  later queries run on ``arrow`` once it is loaded. A query that arrives
  while the load is expected to end within ``[routing] wait_for_load_s``
  waits for it (running it on PostgreSQL meanwhile would cost as much, and
  slow the load); with ``[routing] background_loads = false`` the first query
  loads in the foreground instead.
  A query the analytics plane declines (it touches a column of a type that
  plane does not load exactly, such as ``inet``) runs on ``postgres``: that
  plane answers exactly or not at all.

With a cluster configured (``[cluster] address``), ``auto`` sends a fact query to
``cluster`` when its table is on the cluster already; a table beyond what this
machine may hold (the store's budget, or ``max_load_mb``) is answered on
``postgres`` while the cluster loads it in the background (or, with background
loads off, loaded on the cluster first) — unless the cluster plane declines the
query (a view, a window without a partitionBy): then as above.

An explicit backend is obeyed, or refused with an error saying why.

How: each plane registered (:mod:`.registry`) that runs the query's kind makes an
:class:`~.contract.Offer`, in the registry's order, seeing the offers before it.
The first plane that answers now wins ("ready", or "soon": wait for its load);
else the first "cold" one loads the table (in the background while the fallback
answers, or first when loads are in the foreground); else the fallback answers,
saying why in the words of the last plane with something to say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fraiseql_nb.errors import QueryError
from fraiseql_nb.planes import registry
from fraiseql_nb.planes.contract import Offer, PlaneName

__all__ = ["Route", "choose_plane", "kind_refusal"]


@dataclass(frozen=True)
class Route:
    """A plane and why it was chosen; ``load``: the plane to load the table into in the
    background, after the answer; ``wait``: wait for the table's load (running, nearly
    done) before answering."""

    plane: PlaneName
    reason: str
    load: PlaneName | None = None
    wait: bool = False


def kind_refusal(kind: str, requested: str, key: str) -> QueryError | None:
    """Why the plane ``requested`` does not run a query of ``kind`` (None: it does)."""
    if requested == "auto" or registry.runs(requested, kind):
        return None
    fits = [r.name for r in registry.registered() if registry.runs(r.name, kind)]
    others = ", ".join(repr(n) for n in fits if n != registry.FALLBACK)
    if kind == "rows":
        return QueryError(
            f"{key} is a row query: it runs on the {others} plane (or"
            f" {registry.FALLBACK!r}), not {requested!r}"
        )
    return QueryError(
        f"{key} is an {kind} query: the {requested!r} plane runs row queries only;"
        f" use {', '.join(repr(n) for n in fits)} or 'auto'"
    )


def choose_plane(
    kind: str,
    requested: str,
    offers: Mapping[str, Offer],
    *,
    background: bool = True,
    settle: bool = False,
    key: str = "query",
) -> Route:
    """Choose the plane for one root field.

    Args:
        kind: "rows", "aggregate" or "window".
        requested: "auto", or the plane asked for by name.
        offers: the offers of the planes that run ``kind`` (the fallback aside), in the
            registry's order; for a plane asked for by name, its offer alone.
        background: loads run in the background while the fallback answers
            (``[routing] background_loads``), else first.
        settle: wait for a running load rather than answer elsewhere meanwhile (so the
            plane that answers depends on the data, never on timing).
        key: the root field, for messages.
    """
    refused = kind_refusal(kind, requested, key)
    if refused is not None:
        raise refused
    if requested != "auto":
        offer = offers.get(requested)
        if offer is not None and offer.error is not None:
            raise offer.error
        return Route(requested, offer.reason if offer is not None else "requested")
    for name, offer in offers.items():
        if offer.state == "ready":
            return Route(name, offer.reason)
        if offer.state == "soon" or (settle and offer.state == "loading"):
            return Route(name, offer.reason, wait=True)
    for name, offer in offers.items():
        if offer.state == "cold":
            if background and not settle:
                return Route(registry.FALLBACK, offer.meanwhile, load=name)
            return Route(name, offer.reason)
    said = [o for o in offers.values() if o.state not in ("off", "pass")]
    off = [o for o in offers.values() if o.state == "off"]
    return Route(registry.FALLBACK, said[-1].reason if said else off[0].reason if off else "")
