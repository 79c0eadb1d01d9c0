"""Helpers shared by the tests (importable as ``support``; no test module imports ``conftest``)."""
