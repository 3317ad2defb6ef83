"""trainlab's checkpoints are plain data (weights_only=True loads them), and bad checkpoints get clear errors."""

import os
from pathlib import Path

import pytest
import torch

import trainlab
from tests.helpers.config import compose_config
from trainlab.building import build_datamodule, build_model
from trainlab.checkpoints import CONFIG_KEY, AtomicCheckpointIO, load_run, stored_run_config
from trainlab.config import ConfigError
from trainlab.evaluation import evaluate
from trainlab.models.classification import ClassificationModule
from trainlab.training import train

TINY = [
    "data=synthetic_classification",
    "model=mlp",
    "data.num_train=128",
    "data.num_val=32",
    "data.num_test=32",
    "data.batch_size=32",
    "trainer.max_epochs=1",
    "logger=none",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]


@pytest.fixture(scope="module")
def mlp_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """last.ckpt of a tiny MLP run with a scheduler, regularizer and every default callback."""
    run_dir = tmp_path_factory.mktemp("logs") / "mlp"
    train(compose_config("train", [*TINY, "scheduler=step", "regularizer=l2", "optimizer=momentum"], run_dir))
    return run_dir / "checkpoints" / "last.ckpt"


def test_checkpoint_loads_with_weights_only(mlp_checkpoint: Path) -> None:
    checkpoint = torch.load(mlp_checkpoint, map_location="cpu", weights_only=True)
    assert type(checkpoint["trainlab_config"]) is dict
    assert {"state_dict", "optimizer_states", "lr_schedulers", "callbacks", "loops"} <= set(checkpoint)


def test_checkpoint_stores_each_setting_once(mlp_checkpoint: Path) -> None:
    """Lightning's hyper_parameters hold the module's settings; trainlab_config the rest of the run's config."""
    checkpoint = torch.load(mlp_checkpoint, map_location="cpu", weights_only=True)
    module_settings, rest = checkpoint["hyper_parameters"], checkpoint["trainlab_config"]
    assert module_settings["net"]["hidden"] == [256, 128]
    assert module_settings["optimizer"]["momentum"] > 0 and module_settings["regularizer"] is not None
    assert rest["model"] == {"_target_": "trainlab.models.classification.ClassificationModule"}
    assert not {"optimizer", "scheduler", "regularizer"} & set(rest)
    whole = stored_run_config(checkpoint)
    assert whole["model"]["net"]["hidden"] == [256, 128]
    assert whole["optimizer"] == module_settings["optimizer"] and whole["data"] == rest["data"]


def test_plateau_scheduler_checkpoint_loads_with_weights_only(run_dir: Path) -> None:
    train(compose_config("train", [*TINY, "scheduler=plateau", "optimizer=adamw"], run_dir))
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["lr_schedulers"][0]["mode"] == "min"


def eval_error(ckpt: Path, tmp_path: Path, *overrides: str) -> str:
    with pytest.raises(ConfigError) as error:
        evaluate(compose_config("eval", [f"ckpt_path={ckpt}", *overrides], tmp_path / "eval"))
    return str(error.value)


def test_truncated_checkpoint_is_named_damaged(mlp_checkpoint: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.ckpt"
    data = mlp_checkpoint.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    assert eval_error(truncated, tmp_path) == (
        f"ckpt_path={truncated} is damaged or incomplete (a torch file cut short or corrupted, e.g. by a run killed "
        "while saving); use another checkpoint from the same folder."
    )


def test_corrupted_checkpoint_is_named_damaged(mlp_checkpoint: Path, tmp_path: Path) -> None:
    corrupted = tmp_path / "corrupted.ckpt"
    data = bytearray(mlp_checkpoint.read_bytes())
    data[-200:] = bytes(200)  # wipe the archive's directory
    corrupted.write_bytes(bytes(data))
    assert "is damaged or incomplete" in eval_error(corrupted, tmp_path)


def test_file_that_is_not_a_checkpoint_is_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.ckpt"
    text.write_text("not weights")
    assert eval_error(text, tmp_path) == (
        f"ckpt_path={text} is not a checkpoint (torch.save did not write it); give the path of a .ckpt file from a "
        "run's checkpoints/ folder."
    )


def test_torch_file_without_state_dict_is_named(tmp_path: Path) -> None:
    tensor_file = tmp_path / "tensor.ckpt"
    torch.save({"weights": torch.zeros(3)}, tensor_file)
    assert eval_error(tensor_file, tmp_path) == (
        f"ckpt_path={tensor_file} is not a Lightning checkpoint (it has no state_dict); give a .ckpt file written by "
        "trainlab-train."
    )


def test_eval_as_another_architecture_is_refused(mlp_checkpoint: Path, tmp_path: Path) -> None:
    assert eval_error(mlp_checkpoint, tmp_path, "model=logistic") == (
        f"ckpt_path={mlp_checkpoint} holds a different architecture than the configured model (it has no "
        "net.layer.weight); use the model settings the checkpoint was trained with, or a checkpoint of this model."
    )


def test_resume_with_another_architecture_is_refused(mlp_checkpoint: Path, run_dir: Path) -> None:
    cfg = compose_config("train", [*TINY, f"ckpt_path={mlp_checkpoint}", "model.net.hidden=[64]"], run_dir)
    with pytest.raises(ConfigError) as error:
        train(cfg)
    assert str(error.value) == (
        f"ckpt_path={mlp_checkpoint} holds a different architecture than the configured model "
        "(net.layers.1.weight is [256, 20] there but [64, 20] in the model); use the model settings the checkpoint "
        "was trained with, or a checkpoint of this model."
    )


def test_a_checkpoint_write_cut_short_leaves_the_previous_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save that never completes (here its last step fails, as when a process is killed) changes nothing."""
    path = tmp_path / "last.ckpt"
    writer = AtomicCheckpointIO()
    writer.save_checkpoint({"epoch": 1, "state_dict": {}}, path)

    def killed(*args: object) -> None:
        raise OSError("killed before the write completed")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(OSError, match="killed"):
        writer.save_checkpoint({"epoch": 2, "state_dict": {}}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no partial file left behind


def test_a_trained_model_loads_the_way_lightning_users_load_one(tmp_path: Path) -> None:
    """`<Module>.load_from_checkpoint(path)` and `trainlab.load_model(path)` give the run's own predictions, from
    checkpoints in today's format and in the two earlier ones (the whole config in trainlab_config, with and
    without hyper_parameters)."""
    run_dir = tmp_path / "run"
    overrides = [*TINY, "scheduler=step", "regularizer=l2", "trainer.max_epochs=2", "test=false"]
    cfg = compose_config("train", overrides, run_dir)
    train(cfg)
    path = run_dir / "checkpoints" / "last.ckpt"
    checkpoint, run_cfg = load_run(path)
    datamodule = build_datamodule(run_cfg.data)
    datamodule.setup()
    reference = build_model(cfg, datamodule).eval()  # built from the run's own config, not from the checkpoint
    reference.load_state_dict(checkpoint["state_dict"])
    inputs = datamodule.splits["test"][0][:16]
    whole_config = {**checkpoint, CONFIG_KEY: stored_run_config(checkpoint)}
    earlier_formats = {"whole_config": whole_config, "no_hyper_parameters": {**whole_config, "hyper_parameters": {}}}
    for name, earlier in earlier_formats.items():
        torch.save(earlier, tmp_path / f"{name}.ckpt")
    loaded = [ClassificationModule.load_from_checkpoint(path, weights_only=True), trainlab.load_model(path)]
    loaded += [ClassificationModule.load_from_checkpoint(tmp_path / "whole_config.ckpt", weights_only=True)]
    loaded += [trainlab.load_model(tmp_path / f"{name}.ckpt") for name in earlier_formats]
    for model in loaded:
        assert type(model) is ClassificationModule
        assert torch.equal(model.eval()(inputs), reference(inputs))
