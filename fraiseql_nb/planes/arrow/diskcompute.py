"""An aggregate computed over a table's partitions on disk (and the changed rows kept in
memory beside them), by Polars' streaming engine: declined where the stored values are
not exact or Polars would read them differently, in as many scans as percentiles need
to stay within ``memory_mb``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from fraiseql_nb.compute.aggregate import run_aggregate_lazy
from fraiseql_nb.compute.filters import check_caseless_by, check_time_bounds
from fraiseql_nb.config import Config
from fraiseql_nb.errors import UnsupportedError
from fraiseql_nb.planes.arrow.disktable import CorruptPart, DiskTable, inexact
from fraiseql_nb.query.ir import AggregateQuery
from fraiseql_nb.schema.model import FactTable

__all__ = ["Computed", "compute"]

_MAX_PASSES = 256  # scans of one query with percentiles


@dataclass(frozen=True)
class Computed:
    """The answer, what it was computed over (in words), its columns' dtypes, its scans."""

    frame: pl.DataFrame
    where: str
    dtypes: dict[str, Any]
    passes: int


def compute(
    data: DiskTable, query: AggregateQuery, fact: FactTable, names: list[str], config: Config
) -> Computed:
    """The answer, what it was computed over in words, the dtypes of its columns and the
    scans it took."""
    try:
        return _compute_from(data, query, fact, names, config)
    except OSError as exc:  # a segment removed or unreadable meanwhile (cache clear, LRU)
        raise CorruptPart(0, f"{exc.strerror or exc}") from None


def _compute_from(
    data: DiskTable, query: AggregateQuery, fact: FactTable, names: list[str], config: Config
) -> Computed:
    stats = data.stats()
    for name in names:
        why = inexact(stats, name)
        if why:
            raise UnsupportedError(f"{name} from disk, which holds {why}")
    lf = data.scan(names)
    dtypes = dict(lf.collect_schema())
    for name, (low, high) in stats["times"].items():
        if name in names:
            check_time_bounds(name, dtypes[name], low, high)
    check_caseless_by(lambda name: name in stats["folds"], *query.conditions())
    passes = _passes(data, query, dtypes, names, config)
    frame = run_aggregate_lazy(lf, query, fact, timezone=config.routing.timezone, passes=passes)
    files = sum(len(p.segments) for p in data.parts if p is not None)
    delta = data.delta
    changed = (
        ""
        if delta is None or not (delta.frame.height or delta.keys.len() or delta.cleared)
        else f", emptied since: {delta.frame.height:,} rows in memory instead"
        if delta.cleared
        else f", with {delta.frame.height:,} changed rows in memory replacing"
        f" {delta.keys.len():,} ids of theirs"
    )
    where = (
        f"Polars' streaming engine over {len(data.parts)} partitions on disk ({files}"
        f" files, {data.rows:,} rows{changed}), the columns {', '.join(names)}, in"
        f" {passes} scan{'' if passes == 1 else 's'}"
    )
    return Computed(frame=frame, where=where, dtypes=dtypes, passes=passes)


def _passes(
    data: DiskTable, query: AggregateQuery, dtypes: dict[str, Any], names: list[str], config: Config
) -> int:
    """Scans a query with percentiles needs so that one scan's values fit memory_mb
    (at least 1 MB); a percentile without group keys over more than that is declined
    (it cannot be split exactly): PostgreSQL answers it."""
    if not any(a.percentile is not None for a in query.aggregates):
        return 1
    budget = max(config.arrow_backend.memory_mb, 1) * 2**20
    rows = data.rows + (data.delta.frame.height if data.delta is not None else 0)
    need = rows * sum(_width(dtypes[n]) for n in names)
    if need <= budget:
        return 1
    if not query.group_keys:
        raise UnsupportedError(
            f"a percentile without group keys over {need / 2**20:,.0f} MB of values, more"
            " than [arrow_backend] memory_mb holds"
        )
    return min(math.ceil(need / budget), _MAX_PASSES)


def _width(dtype: Any) -> int:
    """Bytes a value takes in memory, roughly (text: an average short string)."""
    if isinstance(dtype, pl.Decimal):
        return 16
    if dtype in (pl.String, pl.Categorical):
        return 32
    return 8
