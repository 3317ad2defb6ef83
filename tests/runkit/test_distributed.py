"""DDP on two CPU processes: metrics over the whole split, one run folder, each log line once, and multiruns."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from runkit.building import build_datamodule, build_model, build_trainer
from runkit.checkpoints import load_run
from runkit.evaluation import evaluate
from runkit.runs.reading import read_scalars
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import run_script
from tests.runkit.helpers.tensorboard import values

# Odd split sizes: the two ranks get shards of different lengths, which must still add up to the whole split.
TINY = [
    "data=synthetic_classification",
    "model=mlp",
    "data.num_train=256",
    "data.num_val=67",
    "data.num_test=101",
    "data.batch_size=32",
    "+data.eval_batch_size=16",
    "trainer.max_epochs=2",
    "extras.print_config=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]


def single_process_val_acc(checkpoint_path: Path, tmp_path: Path) -> float:
    """val/acc of a checkpoint, computed in this one process over the whole validation split."""
    checkpoint, run_cfg = load_run(checkpoint_path)
    compose_config("train", [], tmp_path / "val")  # registers Hydra's runtime choices for build_model
    datamodule = build_datamodule(run_cfg.data)
    model = build_model(run_cfg)
    model.load_state_dict(checkpoint["state_dict"])
    trainer = build_trainer(
        OmegaConf.create(
            {"_target_": "lightning.pytorch.Trainer", "accelerator": "cpu", "devices": 1, "enable_progress_bar": False}
        ),
        [],
        [],
    )
    return trainer.validate(model, datamodule=datamodule, verbose=False)[0]["val/acc"]


@pytest.mark.slow
def test_ddp_metrics_equal_a_single_process_evaluation(tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    result = run_script("train", [*TINY, "trainer=ddp_cpu", f"hydra.run.dir={run}"], cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    scalars = values(read_scalars(run))
    best = next((run / "checkpoints").glob("epoch_*.ckpt"))
    evaluated = evaluate(compose_config("eval", [f"ckpt_path={best}"], tmp_path / "eval"))
    assert scalars["test/acc"] == [evaluated["test/acc"]]
    assert scalars["val/acc"][-1] == single_process_val_acc(run / "checkpoints" / "last.ckpt", tmp_path)
    # Rank 1 logs nothing below a warning, so each line of the run's log is there once.
    log = (run / "train.log").read_text()
    assert log.count("Final metrics:") == 1
    assert log.count("Data: train") == 1


@pytest.mark.slow
def test_ddp_inside_a_multirun_gives_one_folder_per_job(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        *TINY,
        "trainer=ddp_cpu",
        "trainer.max_epochs=1",
        "seed=1,2",
        f"hydra.sweep.dir={sweep}",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    result = run_script("train", args, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir()) == [
        "000_seed-1",
        "001_seed-2",
        "multirun.yaml",
        "sweep_command.txt",
        "sweep_keys.yaml",
    ]
    assert not (tmp_path / "logs").exists()  # no rank started a run or a sweep of its own elsewhere
    for job, seed in (("000_seed-1", 1), ("001_seed-2", 2)):
        assert OmegaConf.load(sweep / job / ".hydra" / "config.yaml").seed == seed
        assert len(read_scalars(sweep / job)["test/acc"]) == 1
        assert (sweep / job / "train.log").read_text().count("Final metrics:") == 1
    # Each job's rank 0 joined a world of 2: the process group waits for that job's rank 1.
    assert (result.stdout + result.stderr).count("Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2") == 2
