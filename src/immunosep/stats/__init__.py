"""Thin, tested wrappers over scipy, statsmodels and lifelines with the trial's conventions."""
