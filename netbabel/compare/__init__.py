"""Activity comparison: exact and statistical equivalence verdicts, HTML reports, `compare` and `check`."""
