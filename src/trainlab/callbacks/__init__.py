"""Callbacks that Lightning lacks; everything else comes from lightning.pytorch.callbacks."""
