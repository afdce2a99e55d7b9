"""Hyperparameter search over a family's declared ``search_space`` on Optuna (``takeoff tune``).

:func:`~takeoff.tuning.search.tune` runs trials (TPE with a fixed seed, pruning from each
epoch's or boosting round's validation loss) in a study kept in an Optuna storage (an SQLite
file in the run folder, or any SQLAlchemy URL shared by many workers), then refits the best
configuration as an ordinary bundle whose report shows the search.
"""
