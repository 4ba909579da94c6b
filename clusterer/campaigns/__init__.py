"""Campaign decisions: features, the score, flags, operator groups; calibration to verdicts."""
