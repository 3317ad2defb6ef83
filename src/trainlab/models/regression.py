"""Regression: a supervised module whose predictions are the net's outputs as they are."""

from trainlab.models.supervised import SupervisedModule


class RegressionModule(SupervisedModule):
    """Logs what SupervisedModule logs; `task` lets trainlab refuse classification data for it in one line."""

    task = "regression"
