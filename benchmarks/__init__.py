"""The project's own benchmarks: each measures ratios side by side in one process."""
