"""Vectors: encoders, the embedding cache, per-row vectors over a day's distinct ones."""
