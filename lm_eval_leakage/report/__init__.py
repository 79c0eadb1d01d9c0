"""Reports from lm-eval output folders: read the samples, recompute every figure through
``core.pipeline``, and write tables and figures (``python -m lm_eval_leakage report``)."""
