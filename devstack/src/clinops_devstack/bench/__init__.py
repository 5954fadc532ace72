"""Benchmarks: each prints one name=value per line, beside its reference measured in the same run."""
