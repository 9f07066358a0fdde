"""Helpers shared by the tests: datasets in their exact file formats (datasets.py), naive loop
re-computations of the losses (naive_losses.py), hand-written run directories for the report
(runs.py), and synthetic data, trainers and the console script (helpers.py)."""
