"""trainlab's checkpoints are plain data (weights_only=True loads them), and bad checkpoints get clear errors."""

import os
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

import runkit
from runkit.building import build_datamodule, build_model
from runkit.checkpoints import AtomicCheckpointIO, load_checkpoint, load_run, stored_run_config
from runkit.config import ConfigError
from runkit.evaluation import evaluate
from runkit.training import train
from tests.runkit.helpers.config import compose_config
from trainlab.models.classification import ClassificationModule

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


def test_checkpoint_holds_the_runs_whole_config_once(mlp_checkpoint: Path) -> None:
    """The run's config, resolved, is the one place a model is rebuilt from: the module saves no hyper_parameters
    of its own, so the optimizer, scheduler and penalty are stored once, inside the model's section."""
    checkpoint = torch.load(mlp_checkpoint, map_location="cpu", weights_only=True)
    stored = stored_run_config(checkpoint)
    assert "hyper_parameters" not in checkpoint
    assert stored["model"]["net"]["hidden"] == [256, 128]
    assert stored["model"]["optimizer"]["momentum"] > 0 and stored["model"]["regularizer"]["l2"] > 0
    assert stored["model"]["optimizer"] == stored["optimizer"]  # interpolated in config, the same values
    assert stored["model"]["metrics"]["acc"]["_target_"] == "torchmetrics.classification.MulticlassAccuracy"


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


def test_a_trained_model_loads_from_its_path_alone(tmp_path: Path) -> None:
    """`runkit.load_model(path)` gives the run's own predictions, and so does Lightning's own
    `<Module>.load_from_checkpoint(path, **parts)` given the parts a run's config builds."""
    run_dir = tmp_path / "run"
    overrides = [*TINY, "scheduler=step", "regularizer=l2", "trainer.max_epochs=2", "test=false"]
    cfg = compose_config("train", overrides, run_dir)
    train(cfg)
    path = run_dir / "checkpoints" / "last.ckpt"
    checkpoint, run_cfg = load_run(path)
    datamodule = build_datamodule(run_cfg.data)
    datamodule.setup()
    reference = build_model(cfg).eval()  # built from the run's own config, not from the checkpoint
    reference.load_state_dict(checkpoint["state_dict"])
    inputs = datamodule.splits["test"][0][:16]
    parts = {name: instantiate(cfg.model[name]) for name in ("net", "loss", "metrics")}
    loaded = [runkit.load_model(path), ClassificationModule.load_from_checkpoint(path, weights_only=True, **parts)]
    for model in loaded:
        assert type(model) is ClassificationModule
        assert torch.equal(model.eval()(inputs), reference(inputs))


def best_model_path(last: Path) -> Path:
    """What Lightning's ModelCheckpoint (the one monitoring val/loss) saved as its best, read from last.ckpt."""
    states = torch.load(last, map_location="cpu", weights_only=True)["callbacks"]
    (state,) = [state for key, state in states.items() if "'monitor': 'val/loss'" in key]
    return Path(state["best_model_path"])


def test_best_ckpt_links_the_checkpoint_the_run_tested_also_after_resuming(tmp_path: Path) -> None:
    """best.ckpt follows ModelCheckpoint's best_model_path, the checkpoint trainlab-train tests after fitting,
    through a resume and with save_top_k=2; it is a relative link, so no checkpoint is copied."""
    run_dir = tmp_path / "logs" / "run"
    overrides = [*TINY, "callbacks.model_checkpoint.save_top_k=2", "callbacks.early_stopping=null"]
    train(compose_config("train", overrides, run_dir))
    resumed = train(compose_config("train", [*overrides, "trainer.max_epochs=3", "ckpt_path=last"], run_dir))
    checkpoints = run_dir / "checkpoints"
    best = checkpoints / "best.ckpt"
    assert best.is_symlink() and os.readlink(best) == best_model_path(checkpoints / "last.ckpt").name
    assert best.resolve() == best_model_path(checkpoints / "last.ckpt").resolve()
    assert len(list(checkpoints.glob("epoch_*.ckpt"))) == 2
    evaluated = evaluate(compose_config("eval", [f"ckpt_path={best}"], tmp_path / "logs" / "eval"))
    assert evaluated["test/acc"] == pytest.approx(resumed["test/acc"], abs=1e-6)
    assert evaluated["test/loss"] == pytest.approx(resumed["test/loss"], abs=1e-5)


def test_a_run_without_a_best_checkpoint_says_so_with_the_fix(tmp_path: Path) -> None:
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    with pytest.raises(ConfigError) as error:
        load_checkpoint(checkpoints / "best.ckpt")
    assert str(error.value) == (
        f"ckpt_path={checkpoints / 'best.ckpt'} does not exist: that run saved no best checkpoint (it stopped "
        f"before its first validation, or model_checkpoint was off); use {checkpoints / 'last.ckpt'} or train longer."
    )


def test_a_best_link_whose_checkpoint_is_gone_says_so_with_the_fix(tmp_path: Path) -> None:
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "best.ckpt").symlink_to("epoch_004.ckpt")
    with pytest.raises(ConfigError) as error:
        load_checkpoint(checkpoints / "best.ckpt")
    assert str(error.value) == (
        f"ckpt_path={checkpoints / 'best.ckpt'} links to epoch_004.ckpt, which is gone; resume the run "
        f"(ckpt_path=last) to relink it, or give another checkpoint of {checkpoints}."
    )
