"""What trainlab adds to Lightning's loggers: the hyperparameters they get (hparams), TensorBoard's train-vs-val
charts (tensorboard)."""
