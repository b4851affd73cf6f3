"""The labeling loop: the round ledger, status, merge, export, ingest and simulation."""
