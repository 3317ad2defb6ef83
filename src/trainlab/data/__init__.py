"""LightningDataModules that keep their tensors in memory and hand out batches by slicing."""
