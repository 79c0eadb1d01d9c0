"""The lm-eval glue, and the only code of the package that imports lm_eval.

``columns`` declares every reported column once; ``options`` the task options; ``docs`` builds the
per-item documents (dataset hooks, with ``window`` leaving out items that do not fit the model);
``metrics`` turns each item's requests into a record through ``core.pipeline`` and registers the
aggregations; ``check`` builds a task's items with no model; ``autoload`` lets lm-eval find the
tasks and the ``hf-prefix`` model, and ``prefix_model`` is that model.
"""
