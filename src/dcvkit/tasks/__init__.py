"""Per-task glue: what a batch is, what a step computes, which metrics and plots (classify so far)."""
