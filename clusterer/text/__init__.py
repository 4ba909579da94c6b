"""Text: normalisation, shingle skeletons, rendered templates."""
