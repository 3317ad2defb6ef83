"""The engine's data options: what a smoke run (debug=fdr) lets a datamodule that takes them leave out."""

from pathlib import Path

from runkit.building import build_datamodule, data_options
from tests.runkit.helpers.config import compose_config
from trainlab.data.tensor_datamodule import TensorDataModule


def split_sizes(datamodule: TensorDataModule) -> dict[str, int]:
    datamodule.setup("fit")
    return {name: len(inputs) for name, (inputs, _) in datamodule.splits.items()}


def test_debug_fdr_builds_only_the_batch_of_each_split_it_takes(run_dir: Path) -> None:
    """debug=fdr takes one batch of train, val and test: the 26,000 synthetic digits are never drawn."""
    cfg = compose_config("train", ["debug=fdr"], run_dir)
    datamodule = build_datamodule(cfg.data, **data_options(cfg))
    assert split_sizes(datamodule) == {"train": 128, "val": 128, "test": 128}
    unlimited = build_datamodule(cfg.data)  # the same data without fast_dev_run: what a real run builds
    assert split_sizes(unlimited) == {"train": 20000, "val": 2000, "test": 4000}
