"""The query language's tables: WHERE operators (one row each) and their SQL and
Polars renderings, and the names of aggregates, buckets and window functions."""
