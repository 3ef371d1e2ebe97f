"""edgeconv fit: which model fits my board (issue 23).

space (candidates) -> prune (footprint before training) -> training (ASHA rungs: schedule, Optuna) run by
executors (local processes or Ray tasks) -> trial (train to a rung; export and bench a
finalist) -> front (Pareto, the recommended point) -> record (study.json).
"""
