"""The Polars engine: aggregate and window IR over loaded columns, in memory or on disk.

Pure computation, no I/O: it takes the fact table's loaded columns as a
Polars DataFrame (one column per needed name) and returns the query's
output. SQL semantics are kept so that the ``arrow`` and ``postgres`` planes
agree: aggregates skip NULLs and an aggregate over no value is NULL (Polars'
``sum`` would say 0); ``count`` counts rows and ``count_distinct`` ignores
NULLs (Polars' ``n_unique`` would count them); percentiles interpolate like
``percentile_cont``; stddev and variance are the sample versions; NULL is a
group key of its own; filters use three-valued logic. Output is ordered by
the query's orderBy then every group key (aggregates) or the id (windows),
NULLs last, text by code point — as :mod:`fraiseql_nb.sql.facts` orders.
"""
