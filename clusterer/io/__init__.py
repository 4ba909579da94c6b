"""Input and output: reading and validating logs, output file names and atomic writes, table schemas."""
