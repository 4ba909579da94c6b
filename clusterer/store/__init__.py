"""What outlives a run: the campaign registry and the history of earlier days."""
