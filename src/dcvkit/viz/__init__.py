"""Pictures: training curves, confusion matrices, prediction grids, and the self-contained HTML report."""
