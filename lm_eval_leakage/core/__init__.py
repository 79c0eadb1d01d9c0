"""The pure core: items, orderings, templates, the exchangeability guard and every statistic.

numpy and scipy only (scikit-learn lazily, inside the paper's IsolationForest rule); nothing here
imports lm_eval, torch, datasets or another folder of this package. ``pipeline`` is the one place
an item's figures and a run's figures are computed; the harness, the report and the validation
all call it.
"""
