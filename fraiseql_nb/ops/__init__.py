"""Operations: telemetry (metrics, the query log), health, explain, progress, and
the memory budget of results."""
