"""The lm-eval glue, and the only code of the package that imports lm_eval.

``docs`` builds the per-item documents, ``metrics`` turns each item's requests into figures through
``core.pipeline`` and registers the aggregations from one metric table (``columns``), ``autoload``
lets lm-eval find the tasks and the ``hf-prefix`` model, and ``prefix_model`` is that model.
"""
