"""Storage: events (Parquet + DuckDB), the title registry, sidecar naming, per-title files,
the artifact cache and stage measurements."""
