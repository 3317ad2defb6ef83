"""A researcher's own Lightning code gets what trainlab gives its own: docs/extending.md's LightningModule and
LightningDataModule, written as Lightning's docs write them (no trainlab import, no base class), and stock
nn.Modules, losses and metrics chosen in config only. The examples are the page's own files, byte for byte."""

import csv
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

import runkit
from runkit.building import build_model
from runkit.evaluation import evaluate, predict
from runkit.runs.reading import read_scalars
from runkit.summarize import summarize
from runkit.training import train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.examples import example_files, load_example_module, project_with_examples
from tests.runkit.helpers.process import BIN, run_script
from tests.runkit.helpers.tensorboard import values

SMALL_IMAGES = ["data.num_train=256", "data.num_val=64", "data.num_test=64", "data.batch_size=64"]


def write_npy(folder: Path, seed: int = 0) -> Path:
    """train/val/test _x.npy (20 features) and _y.npy (4 classes): Gaussian clusters, as the data config expects."""
    generator = np.random.default_rng(seed)
    centres = 3 * generator.standard_normal((4, 20))
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", 600), ("val", 200), ("test", 200)):
        labels = generator.integers(0, 4, count)
        np.save(folder / f"{split}_x.npy", centres[labels] + generator.standard_normal((count, 20)))
        np.save(folder / f"{split}_y.npy", labels)
    return folder


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's configs with the page's example configs added."""
    return project_with_examples(tmp_path_factory.mktemp("project")).parent / "configs"


@pytest.fixture
def examples(monkeypatch: pytest.MonkeyPatch) -> None:
    for path in example_files():
        if path.endswith(".py"):
            load_example_module(path, monkeypatch)


@pytest.mark.usefixtures("examples")
def test_a_plain_module_and_datamodule_train_test_evaluate_predict_and_load(configs: Path, tmp_path: Path) -> None:
    npy = write_npy(tmp_path / "npy")
    run_dir = tmp_path / "run"
    overrides = ["experiment=npy_lit", f"data.data_dir={npy}", "trainer.max_epochs=3", "logger=none"]
    metrics = train(compose_config("train", overrides, run_dir, config_dir=configs))
    assert metrics["val/acc"] > 0.7 and metrics["test/acc"] > 0.7  # four clusters: chance is 1/4
    last = run_dir / "checkpoints" / "last.ckpt"
    evaluated = evaluate(compose_config("eval", [f"ckpt_path={last}"], tmp_path / "eval", config_dir=configs))
    assert evaluated["test/acc"] > 0.7
    written = predict(compose_config("predict", [f"ckpt_path={last}"], tmp_path / "predict", config_dir=configs))
    with open(written, newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 200 and {"id", "target", "prediction_0", "prediction_3"} <= set(rows[0])
    assert type(runkit.load_model(last)).__name__ == "LitClassifier"


@pytest.mark.usefixtures("examples")
def test_a_plain_modules_mistyped_key_is_one_line(configs: Path, tmp_path: Path) -> None:
    from runkit.config import ConfigError

    with pytest.raises(ConfigError) as error:
        compose_config("train", ["experiment=npy_lit", "+model.hiden=32"], tmp_path / "run", config_dir=configs)
    assert str(error.value).startswith(
        "model.hiden=32 is not a setting of trainlab.models.lit_classifier.LitClassifier"
    )


@pytest.mark.parametrize("net", ["sequential", "resnet18"])
def test_a_stock_nn_module_is_a_net_in_config_only(net: str, configs: Path, tmp_path: Path) -> None:
    overrides = [f"model={net}", *SMALL_IMAGES, "trainer.max_epochs=1", "logger=none", "callbacks=none"]
    metrics = train(compose_config("train", overrides, tmp_path / "run", config_dir=configs))
    assert 0 <= metrics["val/acc"] <= 1 and metrics["test/loss"] > 0


def test_the_loss_is_chosen_in_config(tmp_path: Path) -> None:
    cfg = compose_config("train", ["model.loss.label_smoothing=0.1", *SMALL_IMAGES], tmp_path / "run")
    model = build_model(cfg)
    assert model.loss.label_smoothing == 0.1


F1 = "+model.metrics.f1={_target_: torchmetrics.classification.MulticlassF1Score, num_classes: 10}"


def test_a_metric_added_in_config_reaches_tensorboard_and_the_summary(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_script("train", [F1, *SMALL_IMAGES, "trainer.max_epochs=2", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    curves = values(read_scalars(run_dir))
    assert len(curves["val/f1"]) == 2 and len(curves["train/f1"]) == 2 and len(curves["test/f1"]) == 1
    assert "test/f1" in summarize(run_dir).metric_columns


@pytest.mark.slow  # whole processes: train, resume, a sweep run twice, a search, eval, predict (~60 s)
def test_a_plain_module_and_datamodule_get_every_engine_feature(tmp_path: Path) -> None:
    """The page's commands, as a user runs them, on a copy of the project with the page's files added."""
    src = project_with_examples(tmp_path / "project")
    npy = write_npy(tmp_path / "npy")
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0"}

    def command(name: str, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(BIN / f"trainlab-{name}"), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        return result

    common = ["experiment=npy_lit", f"data.data_dir={npy}", "trainer.max_epochs=2"]
    run = tmp_path / "logs" / "run"
    command("train", *common, f"hydra.run.dir={run}")
    assert yaml.safe_load((run / "status.yaml").read_text())["status"] == "ok"
    command("train", *common, "trainer.max_epochs=3", "ckpt_path=last", f"hydra.run.dir={run}")  # resume
    assert len(values(read_scalars(run))["val/acc"]) == 3  # one point per epoch, over both runs

    sweep = tmp_path / "logs" / "sweep"
    command("train", "-m", *common, "seed=1,2", f"hydra.sweep.dir={sweep}")
    again = command("train", "-m", *common, "seed=1,2", f"hydra.sweep.dir={sweep}")
    assert (again.stdout + again.stderr).count("finished in an earlier run of the sweep") == 2
    assert len(summarize(sweep).rows) == 2

    search = tmp_path / "logs" / "search"
    searched = [*common, "hparams_search=npy_lit_optuna", "hydra/sweeper/pruner=median", f"hydra.sweep.dir={search}"]
    command("train", "-m", *searched, "hydra.sweeper.n_trials=4")
    statuses = [yaml.safe_load(path.read_text())["status"] for path in search.glob("*/status.yaml")]
    assert len(statuses) == 4 and set(statuses) <= {"ok", "pruned"}

    last = run / "checkpoints" / "last.ckpt"
    evaluated = command("eval", f"ckpt_path={last}")
    assert "test/acc=" in evaluated.stdout + evaluated.stderr
    predicted = tmp_path / "logs" / "predicted"
    command("predict", f"ckpt_path={last}", f"hydra.run.dir={predicted}")
    assert (predicted / "predictions.csv").is_file()
