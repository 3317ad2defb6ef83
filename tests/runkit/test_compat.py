"""Each entry of runkit.compat still does what trainlab relies on: these fail when a library changes it."""

import sys
from pathlib import Path

import lightning.pytorch as pl
import optuna
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.demos.boring_classes import BoringModel
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

from runkit.compat import (
    RichEpochLabel,
    composed_files,
    hparams_summaries,
    lightning_rank_command,
    reopen_trial,
    write_summaries,
)
from tests.runkit.helpers.config import compose_config, hydra_context


def test_a_composed_config_becomes_the_runs_hydra_config(tmp_path: Path) -> None:
    compose_config("train", ["model=mlp", "data=synthetic_classification"], tmp_path / "run")
    assert HydraConfig.initialized()
    assert HydraConfig.get().runtime.choices["model"] == "mlp"
    assert HydraConfig.get().runtime.output_dir == str(tmp_path / "run")


def test_hydra_lists_the_files_it_composes_with_their_packages_in_order() -> None:
    from hydra.core.global_hydra import GlobalHydra

    with hydra_context():
        files = composed_files(GlobalHydra.instance().config_loader(), "train", ["experiment=example"])
    assert ("experiment/example", "") in files and ("trainer/default", "trainer") in files
    assert ("model/mlp", "model") in files and ("_model", "model") in files  # model/mlp's own defaults
    assert files.index(("trainer/default", "trainer")) < files.index(("experiment/example", ""))


def test_lightning_reruns_this_command_line_for_other_ranks(tmp_path: Path, monkeypatch) -> None:
    """What process/ddp.py prepares: the command line and HydraConfig's run.dir are what DDP's ranks run."""
    compose_config("train", [], tmp_path / "run")
    run_dir = HydraConfig.get().run.dir
    monkeypatch.setattr(sys, "argv", [sys.argv[0], "seed=3", "trainer=ddp_cpu"])
    command = list(lightning_rank_command(1))
    assert command[-5:] == [
        "seed=3",
        "trainer=ddp_cpu",
        f'hydra.run.dir="{run_dir}"',
        "hydra.job.name=train_ddp_process_1",
        "hydra.output_subdir=null",
    ]
    assert command[0] == sys.executable


def test_a_trial_reopened_by_number_reports_to_the_study_and_asks_its_pruner() -> None:
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(lower=0.5))
    asked = study.ask()
    trial = reopen_trial(study, asked.number)
    trial.report(0.25, step=1)
    assert study.trials[0].intermediate_values == {1: 0.25}
    assert trial.should_prune()  # below the pruner's threshold


def test_hparams_summaries_are_read_back_by_tensorboard_with_the_sweeps_keys_marked(tmp_path: Path) -> None:
    params = {"model": "cnn", "optimizer.lr": 0.01, "seed": 3}
    write_summaries(tmp_path, hparams_summaries(params, {"val/acc": 0.9}, differing={"optimizer.lr"}))
    accumulator = EventAccumulator(str(tmp_path))
    accumulator.Reload()
    contents = accumulator.PluginTagToContent(metadata.PLUGIN_NAME)
    experiment = metadata.parse_experiment_plugin_data(contents[metadata.EXPERIMENT_TAG])
    assert {info.name: info.differs for info in experiment.hparam_infos} == {
        "model": False,
        "optimizer.lr": True,
        "seed": False,
    }
    assert [info.name.tag for info in experiment.metric_infos] == ["val/acc"]
    session = metadata.parse_session_start_info_plugin_data(contents[metadata.SESSION_START_INFO_TAG])
    assert session.hparams["optimizer.lr"].number_value == 0.01


def test_hparams_metrics_keep_the_order_given(tmp_path: Path) -> None:
    """The HPARAMS tab shows metric columns in the experiment's order: trainlab puts the optimized metric first."""
    metrics = {"val/loss": 0.5, "val/acc": 0.9, "test/acc": 0.8}
    write_summaries(tmp_path, hparams_summaries({"seed": "3"}, metrics, differing=set()))
    accumulator = EventAccumulator(str(tmp_path))
    accumulator.Reload()
    content = accumulator.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.EXPERIMENT_TAG]
    experiment = metadata.parse_experiment_plugin_data(content)
    assert [info.name.tag for info in experiment.metric_infos] == ["val/loss", "val/acc", "test/acc"]


def test_the_rich_bar_takes_its_training_label_from_the_mixin(tmp_path: Path) -> None:
    class LabelledBar(RichEpochLabel, RichProgressBar):
        def train_label(self, current_epoch: int) -> str:
            return f"round {current_epoch + 1}"

    bar = LabelledBar()
    trainer = pl.Trainer(
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=0,
        callbacks=[bar],
        logger=False,
        enable_checkpointing=False,
        accelerator="cpu",
        devices=1,
        default_root_dir=tmp_path,
    )
    trainer.fit(BoringModel())
    assert bar.progress.tasks[bar.train_progress_bar_id].description == "round 2"
