"""An aggregate computed over a table's partitions on disk (and the changed rows kept in
memory beside them), by Polars' streaming engine: declined where the stored values are
not exact or Polars would read them differently; percentiles over more values than
``memory_mb`` holds are selected by ranges of value, within it, in a few more scans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from fraiseql_nb.compute.aggregate import run_aggregate_lazy
from fraiseql_nb.compute.filters import check_caseless_by, check_time_bounds
from fraiseql_nb.compute.percentiles import grouped_by_selection
from fraiseql_nb.config import Config
from fraiseql_nb.errors import UnsupportedError
from fraiseql_nb.planes.arrow.disktable import CorruptPart, DiskTable, inexact
from fraiseql_nb.query.ir import AggregateQuery
from fraiseql_nb.schema.model import FactTable

__all__ = ["Computed", "compute"]

#: Rows a query's percentiles may read, over all their scans, within the budget (each
#: scan about a warm aggregate's time: 20 scans of 20M rows took 6 s here), and at least
#: 16 scans; past it the plane declines and PostgreSQL answers.
PERCENTILE_ROWS_READ = 400_000_000
_MIN_PERCENTILE_SCANS = 16


@dataclass(frozen=True)
class Computed:
    """The answer, what it was computed over (in words), its columns' dtypes, its scans."""

    frame: pl.DataFrame
    where: str
    dtypes: dict[str, Any]
    passes: int
    read: int = 0  # partitions read (the others skipped by their statistics)
    total: int = 0  # partitions in all


def compute(
    data: DiskTable, query: AggregateQuery, fact: FactTable, names: list[str], config: Config
) -> Computed:
    """The answer, what it was computed over in words, the dtypes of its columns and the
    scans it took."""
    try:
        return _compute_from(data, query, fact, names, config)
    except OSError as exc:  # a segment removed or unreadable meanwhile (cache clear, LRU)
        raise CorruptPart(0, f"{exc.strerror or exc}") from None
    except pl.exceptions.PolarsError:
        # Polars' own reading error for a file removed under the scan (another process's
        # sync replaced its partition, a cache clear): a missing segment, as before it.
        for i, part in enumerate(data.parts):
            for seg in part.segments if part is not None else ():
                if not (data.folder / seg["file"]).exists():
                    raise CorruptPart(i, f"{seg['file']} is missing") from None
        raise


def _compute_from(
    data: DiskTable, query: AggregateQuery, fact: FactTable, names: list[str], config: Config
) -> Computed:
    stats = data.stats()
    for name in names:
        why = inexact(stats, name)
        if why:
            raise UnsupportedError(f"{name} from disk, which holds {why}")
    skip, read = data.reads(query.where, config.routing.timezone)
    lf = data.scan(names, skip)
    dtypes = dict(lf.collect_schema())
    for name, (low, high) in stats["times"].items():
        if name in names:
            check_time_bounds(name, dtypes[name], low, high)
    check_caseless_by(lambda name: name in stats["folds"], *query.conditions())
    budget = _percentile_budget(data, query, dtypes, names, config)
    tz = config.routing.timezone
    rows = data.rows + (data.delta.frame.height if data.delta is not None else 0)
    scans = max(PERCENTILE_ROWS_READ // max(rows, 1), _MIN_PERCENTILE_SCANS)
    selection = (
        None
        if budget is None
        else lambda lf, types: grouped_by_selection(lf, query, types, tz, budget, scans)
    )
    frame, passes = run_aggregate_lazy(lf, query, fact, timezone=tz, grouped_by=selection)
    files = sum(len(p.segments) for p in data.parts if p is not None) - len(skip)
    delta = data.delta
    changed = (
        ""
        if delta is None or not (delta.frame.height or delta.keys.len() or delta.cleared)
        else f", emptied since: {delta.frame.height:,} rows in memory instead"
        if delta.cleared
        else f", with {delta.frame.height:,} changed rows in memory replacing"
        f" {delta.keys.len():,} ids of theirs"
    )
    total = len(data.parts)
    skipped = f"; {total - read} skipped by their statistics" if read < total else ""
    where = (
        f"Polars' streaming engine over {read} of {total} partitions on disk ({files}"
        f" files read{skipped}; {data.rows:,} rows{changed}), the columns"
        f" {', '.join(names)}, in {passes} scan{'' if passes == 1 else 's'}"
    )
    return Computed(frame=frame, where=where, dtypes=dtypes, passes=passes, read=read, total=total)


def _percentile_budget(
    data: DiskTable, query: AggregateQuery, dtypes: dict[str, Any], names: list[str], config: Config
) -> int | None:
    """The bytes (memory_mb, at least 1 MB) a query's percentiles may hold when its values
    would not fit them, so that they are selected by ranges of value; None when one scan
    holds them (or there is no percentile)."""
    if not any(a.percentile is not None for a in query.aggregates):
        return None
    budget = max(config.arrow_backend.memory_mb, 1) * 2**20
    rows = data.rows + (data.delta.frame.height if data.delta is not None else 0)
    need = rows * sum(_width(dtypes[n]) for n in names)
    return None if need <= budget else budget


def _width(dtype: Any) -> int:
    """Bytes a value takes in memory, roughly (text: an average short string)."""
    if isinstance(dtype, pl.Decimal):
        return 16
    if dtype in (pl.String, pl.Categorical):
        return 32
    return 8
