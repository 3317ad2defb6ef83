"""experiment=pretrain then experiment=finetune: weights really loaded, features frozen first, then trained."""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from runkit.building import build_callbacks, build_datamodule, build_loggers, build_model, build_trainer
from runkit.config import user_error_message
from runkit.runs.reading import read_scalars
from runkit.training import train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.runs import SMALL_CNN
from tests.runkit.helpers.tensorboard import values

SMALL = [*SMALL_CNN, "callbacks.progress_bar=null"]


@pytest.fixture(scope="module")
def pretrained_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("logs") / "pretrain"
    cfg = compose_config(
        "train", ["experiment=pretrain", *SMALL, "trainer.max_epochs=1", "logger=none", "test=false"], run_dir
    )
    train(cfg)
    return run_dir / "checkpoints" / "last.ckpt"


class NetSnapshots(pl.Callback):
    """Copies of the net's weights when training starts and at the end of every epoch."""

    def __init__(self) -> None:
        self.at_start: dict[str, torch.Tensor] = {}
        self.after_epoch: list[dict[str, torch.Tensor]] = []

    def on_train_start(self, trainer, pl_module) -> None:
        self.at_start = snapshot(pl_module.net)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.after_epoch.append(snapshot(pl_module.net))


def snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in net.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], prefix: str) -> bool:
    keys = [key for key in a if key.startswith(prefix)]
    assert keys
    return all(torch.equal(a[key], b[key]) for key in keys)


def test_finetune_loads_the_weights_then_trains_head_only_then_everything(pretrained_ckpt: Path, run_dir: Path) -> None:
    cfg = compose_config(
        "train",
        [
            "experiment=finetune",
            f"pretrained_ckpt={pretrained_ckpt}",
            *SMALL,
            "trainer.max_epochs=2",
            "callbacks.backbone_finetuning.unfreeze_backbone_at_epoch=1",
            "trainer.log_every_n_steps=1",
        ],
        run_dir,
    )
    datamodule = build_datamodule(cfg.data)
    model = build_model(cfg)
    initial = snapshot(model.net)
    loggers = build_loggers(cfg.logger)
    snapshots = NetSnapshots()
    trainer = build_trainer(cfg.trainer, [*build_callbacks(cfg.callbacks, loggers), snapshots], loggers)
    trainer.fit(model, datamodule=datamodule)

    saved = torch.load(pretrained_ckpt, map_location="cpu", weights_only=True)["state_dict"]
    pretrained = {key.removeprefix("net."): value for key, value in saved.items() if key.startswith("net.")}
    # Loaded, not re-initialised: training started from exactly the checkpoint's weights.
    assert same(snapshots.at_start, pretrained, "")
    assert not same(initial, pretrained, "features.")
    # Epoch 0: the features are frozen and the head learns.
    assert same(snapshots.after_epoch[0], pretrained, "features.")
    assert not same(snapshots.after_epoch[0], pretrained, "head.")
    # Epoch 1: unfrozen, the features change too.
    assert not same(snapshots.after_epoch[1], snapshots.after_epoch[0], "features.")

    scalars = values(read_scalars(run_dir))
    assert scalars["finetune/backbone_trainable"] == [0.0, 1.0]


def test_finetune_without_a_checkpoint_says_what_to_pass(run_dir: Path) -> None:
    cfg = compose_config("train", ["experiment=finetune", *SMALL, "logger=none"], run_dir)
    # The model's own ValueError, which the command line tells in one line as it tells trainlab's mistakes.
    with pytest.raises(ValueError, match="pretrained_ckpt is not set; pass pretrained_ckpt=PATH") as error:
        train(cfg)
    assert user_error_message(error.value) == str(error.value)


def test_finetune_with_another_network_shape_is_refused(pretrained_ckpt: Path, run_dir: Path) -> None:
    cfg = compose_config(
        "train",
        [
            "experiment=finetune",
            f"pretrained_ckpt={pretrained_ckpt}",
            *SMALL,
            "model.net.channels=[4,16]",
            "logger=none",
        ],
        run_dir,
    )
    with pytest.raises(ValueError, match="holds a network that does not fit model.net") as error:
        train(cfg)
    assert user_error_message(error.value) == str(error.value)
