"""Local tooling: the embedded PostgreSQL server and the demo data. The core never
imports it; the session's default connection, the CLI and the magics do."""
