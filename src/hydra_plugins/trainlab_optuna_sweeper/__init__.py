"""trainlab's Hydra sweeper on current Optuna: `trainlab-train -m hparams_search=optuna`.

Hydra 1.3 finds it by importing every module under the `hydra_plugins` namespace package (which has no
`__init__.py` for that reason). Modules whose names start with `_` are skipped by that scan; they hold
what imports Optuna, so a plain run never does.
"""
