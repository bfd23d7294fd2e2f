"""Evaluation corpus: deterministic long-form "films" built from real speech (see README.md)."""
