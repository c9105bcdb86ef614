"""Benchmarks run by hand (``.venv/bin/python bench/api.py``); not tests, not app code."""
