"""Callbacks Lightning does not have; everything else comes from lightning.pytorch.callbacks."""
