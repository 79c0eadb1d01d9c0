"""Benchmark adapters: each benchmark's record schema (``schemas``) and where its data comes from (``loading``)."""
