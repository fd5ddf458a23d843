"""Dunning benchmarks: payment to cancelled steps, through ingest or from the ledger."""
