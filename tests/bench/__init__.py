"""Tests of the benchmarks' own code (the lean load client), imported from ``bench/``."""
