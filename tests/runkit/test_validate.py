"""Config mistakes are named before anything is built: wrong types, out-of-range values, misspellings, missing values."""

import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from runkit.config import CONFIG_DIR, ConfigError, user_error_message, validate_config
from runkit.training import train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import run_script

MISTAKES = [
    (
        ["optimizer.lr=-1"],
        "optimizer.lr=-1.0 is out of range: expected a learning rate > 0; use a small positive value, e.g. optimizer.lr=0.001.",
    ),
    (
        ["data.batch_size=0"],
        "data.batch_size=0 is out of range: expected a value >= 1; use a positive batch size, e.g. data.batch_size=128.",
    ),
    (
        ["data.num_folds=5", "data.fold=5"],
        "data.fold=5 is out of range: expected a fold from 0 to 4 because data.num_folds=5; choose data.fold between 0 and 4.",
    ),
    (
        ["model.net.dropout=1.5"],
        "model.net.dropout=1.5 is out of range: expected a probability in [0, 1); use 0 for no dropout.",
    ),
    (
        ["monitor.mode=maximum"],
        "monitor.mode=maximum is out of range: expected min or max; use monitor.mode=min for losses and monitor.mode=max for accuracies.",
    ),
    (["optimizer.lr=fast"], "optimizer.lr=fast has the wrong type: expected a number; set optimizer.lr to a number."),
    (
        ["data.batch_size=2.5"],
        "data.batch_size=2.5 has the wrong type: expected an integer; set data.batch_size to an integer.",
    ),
    (["seed=abc"], "seed=abc has the wrong type: expected an integer; set seed to an integer."),
    (
        ["data.input_shape=[1,a]"],
        "data.input_shape=[1, 'a'] has the wrong type: expected a list of integers; set data.input_shape to a list of integers.",
    ),
    (["train=maybe"], "train=maybe has the wrong type: expected true or false; set train to true or false."),
    (
        ["+optimizer.lrr=0.1"],
        "optimizer.lrr=0.1 is not a setting of torch.optim.Adam (set on the command line); did you mean optimizer.lr?",
    ),
    (
        ["+trainer.max_epoch=3"],
        "trainer.max_epoch=3 is not a setting of lightning.pytorch.Trainer (set on the command line); "
        "did you mean trainer.max_epochs?",
    ),
    (
        ["+callbacks.early_stopping.patiense=3"],
        "callbacks.early_stopping.patiense=3 is not a setting of lightning.pytorch.callbacks.EarlyStopping "
        "(set on the command line); "
        "did you mean callbacks.early_stopping.patience?",
    ),
    (
        ["trainer=ddp_cpu", "trainer.devices=2", "data.batch_size=33"],
        "data.batch_size=33 does not divide evenly across 2 processes (trainer.devices=2 x trainer.num_nodes=1); "
        "use a multiple of 2, e.g. data.batch_size=32.",
    ),
    (
        ["regularizer=l1", "regularizer.l1=-0.1"],
        "regularizer.l1=-0.1 is out of range: expected a value >= 0; use 0 for no L1 penalty.",
    ),
    (
        ["data=synthetic_regression", "model=linear_gd", "model.lr=0"],
        "model.lr=0.0 is out of range: expected a step size > 0; use a small positive value, e.g. optimizer.lr=0.1.",
    ),
    (
        ["callbacks=pruning", "callbacks.model_pruning.amount.final_sparsity=1.5"],
        "callbacks.model_pruning.amount.final_sparsity=1.5 is out of range: expected a fraction in [0, 1); use e.g. 0.5.",
    ),
    (
        ["callbacks=default_images", "callbacks.validation_images.every_n_epochs=-1"],
        "callbacks.validation_images.every_n_epochs=-1 is out of range: expected a value >= 0; "
        "use 0 to turn the images off.",
    ),
    (
        ["+data.colour=red"],
        "data.colour=red is not a setting of trainlab.data.synthetic.SyntheticImagesDataModule (set on the command "
        "line); remove it or check its spelling.",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), MISTAKES)
def test_mistake_is_named_in_one_sentence(overrides: list[str], message: str, run_dir: Path) -> None:
    cfg = compose_config("train", overrides, run_dir, validate=False)
    with pytest.raises(ConfigError) as error:
        validate_config(cfg)
    assert str(error.value) == message


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["optimizer=momentum", "optimizer.nesterov=true"],  # keys outside the schema that the optimizer takes
        ["model=mlp", "data=synthetic_classification", "scheduler=onecycle", "regularizer=elastic_net"],
        ["experiment=example"],
        ["trainer=ddp_cpu", "debug=fdr"],
    ],
)
def test_valid_configs_pass_unchanged(overrides: list[str], run_dir: Path) -> None:
    cfg = compose_config("train", overrides, run_dir)
    composed = OmegaConf.to_yaml(cfg)
    validate_config(cfg)  # raises ConfigError for a config it refuses
    assert OmegaConf.to_yaml(cfg) == composed  # a check, never a rewrite of what the user composed


def test_missing_mandatory_value_is_named(run_dir: Path) -> None:
    cfg = compose_config("eval", [], run_dir, validate=False)
    with pytest.raises(ConfigError) as error:
        validate_config(cfg)
    assert (
        str(error.value)
        == "ckpt_path=??? has no value but the run needs one; set it on the command line, e.g. ckpt_path=<value>."
    )


def test_cli_config_error_exits_2_and_leaves_no_run_folder(tmp_path: Path) -> None:
    result = run_script("train", ["data.batch_size=0", f"paths.log_dir={tmp_path / 'logs'}"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: data.batch_size=0 is out of range: expected a value >= 1; use a positive batch size, e.g. data.batch_size=128."
    )
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "logs" / "train" / "runs").iterdir()) == []


def test_cli_config_error_keeps_a_folder_the_user_named(tmp_path: Path) -> None:
    run = tmp_path / "mine"
    run.mkdir()
    (run / "notes.txt").write_text("my notes")
    result = run_script("train", ["optimizer.lr=0", f"hydra.run.dir={run}"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: optimizer.lr=0.0 is out of range: expected a learning rate > 0; use a small positive value, e.g. optimizer.lr=0.001."
    )
    assert (run / "notes.txt").read_text() == "my notes"


# Values the schema lets through but the class itself refuses, and values of the wrong type for the
# class's own annotations: one line naming the key, the value and the reason, exit code 2, no folder left.
BUILD_MISTAKES = [
    (
        ["optimizer.betas=[0.9,1.5]"],
        "optimizer (torch.optim.Adam) refused its settings optimizer.lr=0.001, optimizer.betas=[0.9, 1.5], "
        "optimizer.weight_decay=0.0: ValueError: Invalid beta parameter at index 1: 1.5",
    ),
    (
        ["callbacks.early_stopping.mode=maximum"],
        "callbacks.early_stopping (lightning.pytorch.callbacks.EarlyStopping) refused its settings "
        "callbacks.early_stopping.monitor=val/loss, callbacks.early_stopping.mode=maximum, "
        "callbacks.early_stopping.patience=5, callbacks.early_stopping.min_delta=0.0: "
        "MisconfigurationException: `mode` can be min, max, got maximum",
    ),
    (
        ["scheduler=onecycle", "scheduler.scheduler.pct_start=2"],
        "scheduler.scheduler (torch.optim.lr_scheduler.OneCycleLR) refused its settings "
        "scheduler.scheduler.max_lr=0.001, scheduler.scheduler.total_steps=None, scheduler.scheduler.pct_start=2: "
        "ValueError: Expected float between 0 and 1 pct_start, but got 2",
    ),
    (
        [
            "scheduler=onecycle",
            "data.num_train=512",
            "data.batch_size=256",
            "trainer.max_epochs=2",
            "~trainer.fast_dev_run",
        ],
        "scheduler=onecycle cannot warm up over scheduler.scheduler.pct_start=0.25 of the run's 4 steps (torch's "
        "OneCycleLR needs each phase to span part of a step or more); use another pct_start, e.g. "
        "scheduler.scheduler.pct_start=0.3, or train for more steps.",
    ),
    (
        ["model.net.hidden=1.5"],
        "model.net.hidden=1.5 has the wrong type (set on the command line): expected an integer; set model.net.hidden to an integer.",
    ),
    (
        ["model.net.kernel_size=[3,a]"],
        "model.net.kernel_size=[3, 'a'] has the wrong type (set on the command line): expected an integer or a list "
        "of integers; "
        "set model.net.kernel_size to an integer or a list of integers.",
    ),
    (
        [
            "+callbacks.lr_monitor._target_=lightning.pytorch.callbacks.LearningRateMonitor",
            "+callbacks.lr_monitor.logging_interval=hour",
        ],
        "callbacks.lr_monitor.logging_interval=hour has the wrong type (set on the command line): expected one of "
        "step, epoch; "
        "set callbacks.lr_monitor.logging_interval to one of step, epoch.",
    ),
    (
        ["optimizer._target_=torch.optim.Adamm"],
        "optimizer._target_=torch.optim.Adamm is not a class that can be imported; check its spelling and that its "
        "package is installed.",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), BUILD_MISTAKES)
def test_a_value_the_class_refuses_is_one_line(overrides: list[str], message: str, run_dir: Path) -> None:
    with pytest.raises(ValueError) as error:  # a ConfigError, or the model's own ValueError: one line either way
        train(compose_config("train", ["debug=fdr", *overrides], run_dir))
    assert user_error_message(error.value) == message


@pytest.mark.slow  # a whole process (~5 s): the fast suite keeps to two minutes
def test_cli_value_the_optimizer_refuses_exits_2_in_one_line_and_leaves_no_folder(tmp_path: Path) -> None:
    result = run_script(
        "train", ["debug=fdr", "optimizer.betas=[0.9,1.5]", f"paths.log_dir={tmp_path / 'logs'}"], cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"Error: {BUILD_MISTAKES[0][1]}"]
    assert list((tmp_path / "logs" / "debug" / "runs").iterdir()) == []  # debug=fdr names the task "debug"


@pytest.mark.slow  # a whole trainlab process (~5 s)
def test_full_traceback_is_one_setting_away(tmp_path: Path) -> None:
    args = ["debug=fdr", "optimizer.betas=[0.9,1.5]", f"paths.log_dir={tmp_path / 'logs'}"]
    result = run_script("train", args, cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "Invalid beta parameter at index 1: 1.5" in result.stderr


@pytest.mark.slow  # a whole process (~5 s): the fast suite keeps to two minutes
def test_a_class_that_cannot_be_imported_is_one_line_before_anything_is_built(tmp_path: Path) -> None:
    args = ["+callbacks.mine._target_=my_callbacks.Watcher", f"paths.log_dir={tmp_path / 'logs'}"]
    result = run_script("train", args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "Error: callbacks.mine._target_=my_callbacks.Watcher is not a class that can be imported; check its "
        "spelling and that its package is installed."
    ]
    assert "Data:" not in result.stdout  # found by the config check, before any data is built


# A mistyped key in a config file: the line names the file, whichever group it belongs to.
FILES = {
    "experiment/fast.yaml": "# @package _global_\ntrainer:\n  max_epoch: 3\n",
    "trainer/slow.yaml": "defaults:\n  - default\n\nmax_epoch: 3\n",
    "local/default.yaml": "# @package _global_\ntrainer:\n  max_epoch: 3\n",
    "model/small.yaml": "defaults:\n  - cnn\n\nnet:\n  hiden: 8\n",
}


@pytest.mark.parametrize(
    ("file", "overrides", "message"),
    [
        (
            "experiment/fast.yaml",
            ["experiment=fast"],
            "trainer.max_epoch=3 is not a setting of lightning.pytorch.Trainer (set in {file}); "
            "did you mean trainer.max_epochs?",
        ),
        (
            "trainer/slow.yaml",
            ["trainer=slow"],
            "trainer.max_epoch=3 is not a setting of lightning.pytorch.Trainer (set in {file}); "
            "did you mean trainer.max_epochs?",
        ),
        (
            "local/default.yaml",
            [],
            "trainer.max_epoch=3 is not a setting of lightning.pytorch.Trainer (set in {file}); "
            "did you mean trainer.max_epochs?",
        ),
        (
            "model/small.yaml",
            ["model=small"],
            "model.net.hiden=8 is not a setting of trainlab.nets.cnn.CNN (set in {file}); did you mean model.net.hidden?",
        ),
    ],
)
def test_a_mistyped_key_in_a_config_file_names_the_file(
    file: str, overrides: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, configs)
    (configs / file).write_text(FILES[file])
    monkeypatch.chdir(tmp_path)  # a file inside the working folder is named as the user would type it
    with pytest.raises(ConfigError) as error:
        compose_config("train", overrides, tmp_path / "logs" / "run", config_dir=configs)
    assert str(error.value) == message.format(file=f"configs/{file}")


@pytest.mark.slow  # a whole trainlab process (~5 s)
def test_cli_mistyped_key_in_an_experiment_file_names_the_file(tmp_path: Path) -> None:
    configs = tmp_path / "my_configs"
    (configs / "experiment").mkdir(parents=True)
    (configs / "experiment" / "fast.yaml").write_text(FILES["experiment/fast.yaml"])
    args = ["--config-dir", str(configs), "experiment=fast", f"paths.log_dir={tmp_path / 'logs'}"]
    result = run_script("train", args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "Error: trainer.max_epoch=3 is not a setting of lightning.pytorch.Trainer (set in "
        "my_configs/experiment/fast.yaml); did you mean trainer.max_epochs?"
    ]
