"""Benchmarks, run as scripts (see README.md); never collected by pytest."""
