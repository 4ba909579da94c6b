"""Clustering: HDBSCAN over the graph, noise attachment, family grouping, per-cluster summaries."""
