"""Every option of every config group composes, and what it describes can be built."""

import math
import re
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose
from omegaconf import OmegaConf

from runkit.building import build_callbacks, build_datamodule, build_loggers, build_model, build_trainer
from runkit.config import CONFIG_DIR
from runkit.training import train
from tests.runkit.helpers.config import compose_config, group_options, hydra_context
from tests.trainlab.idx import write_fake_dataset
from trainlab.data.tensor_datamodule import TensorDataModule
from trainlab.models.supervised import SupervisedModule

# A model that fits each data option.
MODEL_FOR_DATA = {"synthetic_images": "cnn", "synthetic_classification": "mlp", "synthetic_regression": "linear"}


# Synthetic data options draw their data; the MNIST family reads files (tests/trainlab/idx.py writes them).
@pytest.mark.parametrize("option", [o for o in group_options("data") if o.startswith("synthetic")])
def test_data_option_builds_and_serves_batches(option: str, run_dir: Path) -> None:
    cfg = compose_config(
        "train",
        [
            f"data={option}",
            f"model={MODEL_FOR_DATA.get(option, 'cnn')}",
            "data.num_train=200",
            "data.num_val=50",
            "data.num_test=50",
        ],
        run_dir,
    )
    datamodule = build_datamodule(cfg.data)
    assert isinstance(datamodule, TensorDataModule)
    datamodule.setup("fit")
    inputs, targets = next(iter(datamodule.train_dataloader()))
    assert tuple(inputs.shape[1:]) == tuple(cfg.data.input_shape)
    assert len(inputs) == len(targets) == min(cfg.data.batch_size, 200)


@pytest.mark.parametrize("option", group_options("model"))
def test_model_option_builds_and_runs_forward(option: str, run_dir: Path) -> None:
    data = {"linear": "synthetic_regression", "linear_gd": "synthetic_regression"}.get(option, "synthetic_images")
    cfg = compose_config("train", [f"model={option}", f"data={data}"], run_dir)
    model = build_model(cfg)
    assert isinstance(model, SupervisedModule)
    out = model(torch.zeros(3, *cfg.data.input_shape))
    assert out.shape == (3, cfg.data.get("num_classes", 1))


@pytest.mark.parametrize("option", group_options("optimizer"))
@pytest.mark.parametrize("scheduler", ["none", "step", "cosine", "plateau"])
def test_optimizer_and_scheduler_options_build(option: str, scheduler: str, run_dir: Path) -> None:
    cfg = compose_config(
        "train",
        [f"optimizer={option}", f"scheduler={scheduler}", "model=mlp", "data=synthetic_classification"],
        run_dir,
    )
    model = build_model(cfg)
    built = model.configure_optimizers()
    optimizer = built["optimizer"] if isinstance(built, dict) else built
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert optimizer.param_groups[0]["lr"] == cfg.optimizer.lr
    if scheduler != "none":
        assert built["lr_scheduler"]["scheduler"].optimizer is optimizer


def test_onecycle_scheduler_fills_in_the_run_length(run_dir: Path) -> None:
    cfg = compose_config(
        "train",
        [
            "scheduler=onecycle",
            "model=mlp",
            "data=synthetic_classification",
            "data.num_train=256",
            "data.batch_size=64",
            "trainer.max_epochs=3",
        ],
        run_dir,
    )
    datamodule = build_datamodule(cfg.data)
    model = build_model(cfg)
    trainer = build_trainer(cfg.trainer, callbacks=[], loggers=[])
    trainer.fit(model, datamodule=datamodule)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.total_steps == 3 * 4


@pytest.mark.parametrize("option", group_options("regularizer"))
def test_regularizer_option_builds(option: str, run_dir: Path) -> None:
    cfg = compose_config("train", [f"regularizer={option}"], run_dir)
    model = build_model(cfg)
    if option == "none":
        assert model.regularizer is None
    else:
        assert float(model.regularizer(model.net)) > 0


@pytest.mark.parametrize("option", group_options("trainer"))
def test_trainer_option_builds(option: str, run_dir: Path) -> None:
    # This machine has no GPU: GPU presets are built with the CPU accelerator, keeping everything else.
    needs_gpu = option in {"gpu", "mps", "ddp"}
    overrides = [f"trainer={option}"] + (["trainer.accelerator=cpu"] if needs_gpu else [])
    cfg = compose_config("train", overrides, run_dir, quiet=False)
    if needs_gpu:
        assert compose_config("train", [f"trainer={option}"], run_dir, quiet=False).trainer.accelerator in {
            "gpu",
            "mps",
        }
    trainer = build_trainer(cfg.trainer, callbacks=[], loggers=[])
    # The preset's choices reach the Trainer: precision, run length, and DDP's processes.
    assert (trainer.precision, trainer.max_epochs) == (cfg.trainer.precision, cfg.trainer.max_epochs)
    if option.startswith("ddp"):
        assert type(trainer.strategy).__name__ == "DDPStrategy"
        assert trainer.num_devices == 2


# Options whose classes need a package of .venv-extras (matplotlib, MLflow, W&B).
NEED_EXTRAS = {"callbacks": {"default_images"}, "logger": {"mlflow", "wandb", "many"}}


def options_of(group: str) -> list:
    """The group's options, those that need .venv-extras marked so."""
    return [
        pytest.param(name, marks=pytest.mark.extras) if name in NEED_EXTRAS[group] else name
        for name in group_options(group)
    ]


@pytest.mark.parametrize("callbacks", options_of("callbacks"))
def test_callbacks_options_build(callbacks: str, run_dir: Path) -> None:
    cfg = compose_config("train", [f"callbacks={callbacks}"], run_dir)
    loggers = build_loggers(cfg.get("logger"))
    built = build_callbacks(cfg.get("callbacks"), loggers)
    names = {type(c).__name__ for c in built}
    if callbacks == "default":
        assert {
            "ModelCheckpoint",
            "EarlyStopping",
            "OneLineModelSummary",
            "LogLearningRate",
        } <= names
        assert names & {"ThrottledRichProgressBar", "EpochLines"}  # the bar on a terminal, epoch lines elsewhere
    build_trainer(cfg.trainer, built, loggers)


# `mlflow` and `many` build MLflow's store (seconds): with the slow tests.
LOGGERS = [
    pytest.param(name, marks=[pytest.mark.extras, pytest.mark.slow]) if name in ("mlflow", "many") else option
    for name, option in zip(group_options("logger"), options_of("logger"), strict=True)
]


@pytest.mark.parametrize("logger", LOGGERS)
def test_logger_options_build(logger: str, run_dir: Path) -> None:
    cfg = compose_config("train", [f"logger={logger}"], run_dir)
    loggers = build_loggers(cfg.get("logger"))
    assert len(loggers) == {"none": 0, "many": 3}.get(logger, 1)
    build_trainer(cfg.trainer, build_callbacks(cfg.get("callbacks"), loggers), loggers)


# What docs/configs.md promises of each debug option, on a real fit of a small model.
@pytest.mark.parametrize("option", group_options("debug"))
def test_debug_option_trains_as_far_as_it_promises(option: str, run_dir: Path) -> None:
    small = ["data=synthetic_classification", "model=mlp", "data.num_train=512", "data.batch_size=32"]
    cfg = compose_config("train", [*small, f"debug={option}", "trainer.max_epochs=2"], run_dir)
    datamodule = build_datamodule(cfg.data)
    trainer = build_trainer(cfg.trainer, build_callbacks(cfg.get("callbacks"), []), loggers=[])
    trainer.fit(build_model(cfg), datamodule=datamodule)
    full_epoch = 512 // 32
    if option == "fdr":  # one batch of train and val
        assert (trainer.global_step, trainer.num_val_batches) == (1, [1])
    elif option == "overfit":  # the same 3 batches, again and again
        assert trainer.num_training_batches == 3
    elif option == "limit":  # 2 short epochs
        assert trainer.current_epoch == 2 and 0 < trainer.global_step < 2 * full_epoch
    else:  # profiler: every hook timed, the report in the run folder
        assert "training_step" in (run_dir / "fit-profile.txt").read_text()


# Every experiment trains a batch as composed (the MNIST family from small IDX files, offline); finetune starts
# from a pre-training checkpoint, which tests/runkit/test_finetuning.py makes first.
@pytest.mark.slow
@pytest.mark.parametrize("option", [option for option in group_options("experiment") if option != "finetune"])
def test_experiment_option_trains_a_batch(option: str, run_dir: Path, tmp_path: Path) -> None:
    overrides = [f"experiment={option}", "debug=fdr", f"paths.data_dir={tmp_path}"]
    if "download" in compose_config("train", overrides, run_dir).data:
        write_fake_dataset(tmp_path)
        overrides += ["data.download=false", "data.num_val=40"]
    metrics = train(compose_config("train", overrides, run_dir))
    assert "val/loss" in metrics and all(math.isfinite(value) for value in metrics.values())


def test_eval_config_composes(run_dir: Path) -> None:
    cfg = compose_config("eval", ["ckpt_path=some.ckpt"], run_dir)
    assert cfg.ckpt_path == "some.ckpt"
    assert cfg.get("data") is None  # taken from the checkpoint unless given


# --- each setting has one home -------------------------------------------------------------------------------
# A default is written once (configs/_*.yaml, or the option a family inherits), so changing it changes every
# option that shares it; options that restated it would silently keep the old value.
CONFIGS = Path(CONFIG_DIR)


def own_keys(group: str, option: str) -> dict:
    """The keys a group option's file sets itself, without its defaults list."""
    own = yaml.safe_load((CONFIGS / group / f"{option}.yaml").read_text())
    return {key: value for key, value in own.items() if key != "defaults"}


def differing(a: dict, b: dict, prefix: str = "") -> set[str]:
    """Dotted keys whose values differ between two (unresolved) config trees."""
    keys = set()
    for key in a.keys() | b.keys():
        x, y = a.get(key, "<missing>"), b.get(key, "<missing>")
        if isinstance(x, dict) and isinstance(y, dict):
            keys |= differing(x, y, f"{prefix}{key}.")
        elif x != y:
            keys.add(f"{prefix}{key}")
    return keys


def composed(overrides: list[str], run_dir: Path) -> dict:
    return OmegaConf.to_container(compose_config("train", overrides, run_dir, quiet=False), resolve=False)


# The MNIST family differs from MNIST in what the files are, and in nothing else.
@pytest.mark.parametrize(
    ("option", "differs_in"),
    [("fashion_mnist", {"dataset"}), ("kmnist", {"dataset"}), ("emnist", {"dataset", "split", "num_classes"})],
)
def test_mnist_family_options_are_mnist_with_other_files(option: str, differs_in: set[str], run_dir: Path) -> None:
    mnist = composed(["data=mnist"], run_dir)["data"]
    assert differing(composed([f"data={option}"], run_dir)["data"], mnist) == differs_in
    assert own_keys("data", option).keys() == differs_in  # inherited from mnist.yaml, not restated


SHARED = {  # group -> keys every option has, from one file
    "data": {"num_folds": None, "fold": 0, "train_size": None},
    "model": {"compile": False, "channels_last": "${is_bf16:${trainer.precision}}"},
}


@pytest.mark.parametrize("group", SHARED)
def test_every_option_takes_the_shared_settings_from_one_file(group: str, run_dir: Path) -> None:
    shared = SHARED[group]
    for option in group_options(group):
        # every option has them, so `data.num_folds=5` or `model.compile=true` works with any of them (no `+`)
        section = composed([f"{group}={option}"], run_dir)[group]
        assert {key: section[key] for key in shared} == shared, option
        assert not own_keys(group, option).keys() & shared.keys(), f"{group}/{option}.yaml restates them"
    cfg = compose_config("train", ["data.num_folds=5", "data.fold=4", "model.compile=true"], run_dir)
    assert (cfg.data.num_folds, cfg.data.fold, cfg.model.compile) == (5, 4, True)


def test_one_seed_for_training_evaluation_prediction_and_the_search(run_dir: Path) -> None:
    homes = [p.relative_to(CONFIGS) for p in CONFIGS.rglob("*.yaml") if re.search(r"\b12345\b", p.read_text())]
    assert len(homes) == 1, homes
    assert compose_config("train", [], run_dir).seed == 12345
    for name in ("eval", "predict"):  # the same default seed as a training run
        assert compose_config(name, ["ckpt_path=x.ckpt"], run_dir).seed == 12345, name
    # The search's sampler follows the run's seed: `seed=7` proposes other trials, reproducibly.
    with hydra_context():
        for seed in (12345, 7):
            cfg = compose("train", ["hparams_search=optuna", f"seed={seed}"], return_hydra_config=True)
            assert cfg.hydra.sweeper.sampler.seed == seed


@pytest.mark.parametrize("option", group_options("trainer"))
def test_a_trainer_option_changes_only_the_trainer(option: str, run_dir: Path) -> None:
    changed = differing(composed([f"trainer={option}"], run_dir), composed([], run_dir))
    assert {key for key in changed if not key.startswith("trainer.")} == set()


def test_models_lay_batches_out_channels_last_exactly_with_bf16(run_dir: Path) -> None:
    """The CPU's bf16 convolutions are slow on the standard layout: a model follows the trainer's precision, and
    an explicit choice wins."""
    assert compose_config("train", [], run_dir).model.channels_last is False
    assert compose_config("train", ["trainer=bf16"], run_dir).model.channels_last is True
    assert compose_config("train", ["trainer=bf16", "model.channels_last=false"], run_dir).model.channels_last is False
    assert compose_config("train", ["model.channels_last=true"], run_dir).model.channels_last is True


@pytest.mark.parametrize("option", group_options("debug"))
def test_debug_options_pin_one_cpu_except_the_profiler(option: str, run_dir: Path) -> None:
    cfg = compose_config("train", ["trainer=ddp", f"debug={option}"], run_dir, quiet=False)
    assert cfg.task_name == "debug"
    # quick checks behave alike on any machine; the profiler measures the run's own accelerator
    expected = ("ddp", "gpu", 2) if option == "profiler" else ("ddp", "cpu", 1)
    assert (cfg.trainer.strategy, cfg.trainer.accelerator, cfg.trainer.devices) == expected
    trainer_keys = own_keys("debug", option).get("trainer", {}).keys()
    assert not trainer_keys & {"accelerator", "devices"}, "set once, in configs/_debug.yaml"


def test_shared_files_are_not_options() -> None:
    """configs/_*.yaml are taken in by other configs: at the top of configs/, which is no config group, so
    --help, the table in docs/configs.md and `group=option` never offer them. In a group folder they would be options."""
    assert not [p for p in CONFIGS.glob("*/**/_*.yaml")], "a shared file in a group folder is listed as an option"
    shared = {p.stem for p in CONFIGS.glob("_*.yaml")}
    used = {m for p in CONFIGS.rglob("*.yaml") for m in re.findall(r"^  - /?(_\w+)", p.read_text(), re.M)}
    assert shared == used - {"_self_"}, "every shared file is taken in somewhere"
