"""Benchmarks: comparisons run side by side in one process, reported as ratios (machines are noisy)."""
