"""PostgreSQL plumbing: connection strings, connections and the pool, error text,
per-request deadlines, and reading JSON documents."""
