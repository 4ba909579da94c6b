"""Reports of a finished run: console tables and the HTML report."""
