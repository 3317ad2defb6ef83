"""LightningModules: a plain network plus its loss, metrics and optimisation."""
