"""experiment=optimizer_comparison: every optimizer of the sweep lowers the training loss of the same model."""

from pathlib import Path

import pytest
import torch
import yaml

from runkit.building import build_datamodule, build_model, build_trainer
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import ROOT, run_script

SWEPT = ["gd", "sgd", "momentum", "adam", "rmsprop"]
TINY = ["data.num_train=256", "data.num_val=64", "data.num_test=64", "data.batch_size=32"]


def training_set_loss(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float(model.loss(model(inputs), targets))


def test_the_sweep_covers_every_optimizer(run_dir: Path) -> None:
    cfg = compose_config("train", ["experiment=optimizer_comparison"], run_dir)
    assert cfg.task_name == "optimizer_comparison"
    experiment = yaml.safe_load((ROOT / "configs/experiment/optimizer_comparison.yaml").read_text())
    assert experiment["hydra"]["sweeper"]["params"]["optimizer"].split(",") == SWEPT


@pytest.mark.parametrize("optimizer", SWEPT)
def test_each_optimizer_lowers_the_training_loss(optimizer: str, run_dir: Path) -> None:
    # A narrower CNN than the experiment's and no validation: the fast suite only needs the trend.
    cfg = compose_config(
        "train",
        [
            "experiment=optimizer_comparison",
            f"optimizer={optimizer}",
            *TINY,
            "trainer.max_epochs=2",
            "+trainer.limit_val_batches=0",
            "model.net.channels=[8,16]",
            "model.net.hidden=64",
            "logger=none",
            "callbacks=none",
        ],
        run_dir,
    )
    datamodule = build_datamodule(cfg.data)
    datamodule.setup("fit")
    model = build_model(cfg)
    inputs, targets = datamodule.splits["train"]
    before = training_set_loss(model, inputs, targets)
    build_trainer(cfg.trainer, [], []).fit(model, datamodule=datamodule)
    after = training_set_loss(model, inputs, targets)
    # From ln(10) = 2.30 at the start; 16 small steps bring every optimizer down by 0.06 or more.
    assert after < before - 0.03, f"{optimizer}: training loss {before:.4f} -> {after:.4f}"


@pytest.mark.slow
def test_multirun_writes_one_tensorboard_run_per_optimizer(tmp_path: Path) -> None:
    result = run_script(
        "train",
        [
            "-m",
            "experiment=optimizer_comparison",
            *TINY,
            "trainer.max_epochs=1",
            "extras.print_config=false",
            "trainer.accelerator=cpu",
        ],
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep_dir,) = (tmp_path / "logs" / "optimizer_comparison" / "multiruns").iterdir()
    jobs = sorted(path.name for path in sweep_dir.iterdir() if path.is_dir())
    assert jobs == [f"{number:03d}_optimizer-{name}" for number, name in enumerate(SWEPT)]
    assert all(any((sweep_dir / job).glob("events.out.tfevents.*")) for job in jobs)
