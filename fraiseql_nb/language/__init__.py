"""The query language's tables, one row per meaning: WHERE operators (``operators``,
their SQL and Polars renderings in ``operator_sql`` and ``operator_polars``), aggregate
functions (``aggregates``), and the names of time buckets and window functions
(``vocabulary``)."""
