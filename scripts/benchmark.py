"""Measure what the template costs: `make bench` (or `.venv/bin/python scripts/benchmark.py`).

Runs, in one process, side by side and alternating (A B A B ...), medians over repeats:
  1. the same CNN on the same in-memory data for three epochs, by a hand-written PyTorch loop and
     through trainlab's LightningModule + DataModule + Trainer as configured by default (and, for
     reference, through a bare Lightning Trainer): the steady epoch time (epochs 2-3) and the whole fit;
  2. start-up: process start to first training step, and `trainlab-train debug=fdr` to exit;
  3. data: building the synthetic_images training set and streaming one epoch of batches;
  4. time to accuracy of `experiment=mnist_cnn`, seeds 1-3, 32-bit and trainer=bf16, on MNIST-sized synthetic
     images and on the official MNIST files when they are in data/MNIST/raw;
  5. a 4-job multirun with the joblib launcher against the basic one, where joblib is installed;
  6. a 12-trial Optuna search of the CNN's learning rate and width on synthetic images, without and
     with a pruner: wall time and best val/acc of each (`--only search` runs this section alone);
  7. bfloat16 mixed precision against 32-bit, for the hand-written loop and the template, with the
     accuracy each reaches (`--only precision`);
  8. how costs grow: epoch time and peak memory at 10k, 60k and 600k images, and joblib sweeps of 4 and
     8 jobs sharing their data or not (scripts/benchmark_scaling.py; `--only scaling`).
`--only epoch` runs sections 1 and 2 alone, `--only accuracy` section 4.
Writes benchmarks/results.json and benchmarks/results.md (`--only` updates its own section there).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from omegaconf import open_dict

from trainlab.building import build_callbacks, build_datamodule, build_loggers, build_model, build_trainer
from trainlab.config import compose
from trainlab.process import stop_gpu_probes_without_gpus

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def median_of(runs: list[float]) -> float:
    return statistics.median(runs)


def alternate(first: Callable[[], float], second: Callable[[], float], repeats: int) -> tuple[list[float], list[float]]:
    """Time two contenders A B A B ..., so drifts in machine load hit both alike."""
    a, b = [], []
    for _ in range(repeats):
        a.append(first())
        b.append(second())
    return a, b


# --- 1. hand-written loop against the template -----------------------------------------------
EPOCHS = 3  # the first epoch of a fit carries its start-up; the later ones are the steady state


def template_setup(workdir: Path, num_train: int, batch_size: int, epochs: int = EPOCHS):
    cfg = compose(
        "train",
        [
            "extras.print_config=false",
            "trainer.accelerator=cpu",
            "trainer.devices=1",
            f"data.num_train={num_train}",
            "data.num_val=2000",
            f"data.batch_size={batch_size}",
            f"trainer.max_epochs={epochs}",
        ],
        workdir / "template",
    )
    datamodule = build_datamodule(cfg.data)
    datamodule.setup("fit")
    return cfg, datamodule


def hand_written_fit(cfg, datamodule, bf16: bool = False) -> list[float]:
    """EPOCHS epochs of training, each followed by a validation pass, the way one writes it by hand
    (`bf16`: under torch.autocast to bfloat16, as one adds it by hand).

    Returns the time of each epoch; their sum is the whole fit. `HAND_WRITTEN_VAL_ACC` keeps the last accuracy."""
    model = build_model(cfg, datamodule).net
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optimizer.lr)
    (x_train, y_train), (x_val, y_val) = datamodule.splits["train"], datamodule.splits["val"]
    batch = cfg.data.batch_size
    marks = [time.perf_counter()]
    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(len(x_train))
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            correct = sum(
                (model(x_val[i : i + batch]).argmax(1) == y_val[i : i + batch]).sum().item()
                for i in range(0, len(x_val), batch)
            )
        HAND_WRITTEN_VAL_ACC[bf16] = correct / len(x_val)
        marks.append(time.perf_counter())
    return [end - start for start, end in zip(marks, marks[1:], strict=False)]


HAND_WRITTEN_VAL_ACC: dict[bool, float] = {}


class EpochClock(Callback):
    """Times each epoch of a fit: from one epoch's start to the next (validation and checkpoints included)."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.marks.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module) -> None:
        self.marks.append(time.perf_counter())

    def epochs(self) -> list[float]:
        return [end - start for start, end in zip(self.marks, self.marks[1:], strict=False)]


def timed_fit(
    trainer: pl.Trainer, model: pl.LightningModule, datamodule, clock: EpochClock
) -> tuple[float, list[float]]:
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    return time.perf_counter() - start, clock.epochs()


def template_fit(cfg, datamodule, precision: str = "32-true") -> tuple[float, list[float]]:
    """The same epochs through trainlab's default callbacks, TensorBoard logger and checkpointing.
    `TEMPLATE_VAL_ACC` keeps the accuracy of the last validation, by precision."""
    model = build_model(cfg, datamodule)
    loggers = build_loggers(cfg.logger)
    clock = EpochClock()
    trainer_cfg = cfg.trainer.copy()
    trainer_cfg.precision = precision
    trainer = build_trainer(trainer_cfg, [*build_callbacks(cfg.callbacks, loggers), clock], loggers)
    timed = timed_fit(trainer, model, datamodule, clock)
    TEMPLATE_VAL_ACC[precision] = float(trainer.callback_metrics["val/acc"])
    return timed


TEMPLATE_VAL_ACC: dict[str, float] = {}


class BareModule(pl.LightningModule):
    """The least a LightningModule can do: the same net, loss and optimizer, nothing logged."""

    def __init__(self, net: torch.nn.Module, lr: float) -> None:
        super().__init__()
        self.net, self.lr = net, lr

    def training_step(self, batch, batch_idx):
        inputs, targets = batch
        return F.cross_entropy(self.net(inputs), targets)

    def validation_step(self, batch, batch_idx):
        inputs, targets = batch
        (self.net(inputs).argmax(1) == targets).sum()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def lightning_floor_fit(cfg, datamodule) -> tuple[float, list[float]]:
    """Lightning's own cost, for reference: a bare Trainer (no logger, callbacks, progress bar or checkpoints)."""
    model = BareModule(build_model(cfg, datamodule).net, cfg.optimizer.lr)
    clock = EpochClock()
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        logger=False,
        callbacks=[clock],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(Path(cfg.paths.output_dir) / "floor"),
    )
    return timed_fit(trainer, model, datamodule, clock)


def paired_ratio(numerators: list[float], denominators: list[float]) -> dict[str, float]:
    """The median of the repeats' own ratios, and their smallest and largest: how far the machine moves them."""
    ratios = [a / b for a, b in zip(numerators, denominators, strict=True)]
    return {"median": round(median_of(ratios), 3), "min": round(min(ratios), 3), "max": round(max(ratios), 3)}


def steady_epoch(epochs: list[float]) -> float:
    """The median epoch after the first."""
    return median_of(epochs[1:])


# --- 2. start-up ------------------------------------------------------------------------------
def process_time(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [str(BIN / "trainlab-train"), *args, f"paths.log_dir={cwd}"], cwd=cwd, check=True, capture_output=True
    )
    return time.perf_counter() - start


def to_first_step(cwd: Path) -> float:
    """Process start to the end of the first training step (one step, nothing after it)."""
    return process_time(
        [
            "trainer.max_steps=1",
            "+trainer.limit_val_batches=0",
            "test=false",
            "optimized_metric=null",  # no validation runs, so no objective is logged
            "logger=none",
            "callbacks=none",
            "data.num_train=1000",
            "data.num_val=100",
            "data.num_test=100",
            "extras.print_config=false",
        ],
        cwd,
    )


# --- 3. data ----------------------------------------------------------------------------------
def build_synthetic_images(num_train: int) -> float:
    from trainlab.data.synthetic import SyntheticImagesDataModule

    start = time.perf_counter()
    SyntheticImagesDataModule(num_train=num_train, num_val=1000, num_test=1000, seed=0).setup()
    return time.perf_counter() - start


def stream_epoch(datamodule) -> float:
    start = time.perf_counter()
    for _ in datamodule.train_dataloader():
        pass
    return time.perf_counter() - start


# --- 4. time to accuracy ----------------------------------------------------------------------
MNIST_SIZED_SYNTHETIC = ["data=synthetic_images", "data.num_train=55000", "data.num_val=5000", "data.num_test=10000"]
SEEDS = (1, 2, 3)


def mnist_files_present() -> bool:
    raw = ROOT / "data" / "MNIST" / "raw"
    return (raw / "t10k-labels-idx1-ubyte").is_file() or (raw / "t10k-labels-idx1-ubyte.gz").is_file()


def timed_run(args: list[str], cwd: Path) -> tuple[float, float | None]:
    """(seconds, test/acc) of one whole `trainlab-train` process."""
    start = time.perf_counter()
    result = subprocess.run(
        [str(BIN / "trainlab-train"), *args, "extras.print_config=false", f"paths.log_dir={cwd}"],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    acc = next(
        (
            line.split("test/acc=")[1].split(",")[0]
            for line in result.stdout.splitlines() + result.stderr.splitlines()
            if "Final metrics" in line and "test/acc=" in line
        ),
        None,
    )
    return seconds, float(acc) if acc else None


def time_to_accuracy(cwd: Path) -> dict | None:
    """`experiment=mnist_cnn` as a user runs it, seeds 1-3, 32-bit and `trainer=bf16` (where the hardware has
    bf16): whole-process seconds and test accuracy of each run. On MNIST-sized synthetic digits, and on the
    official MNIST files too when they are in data/MNIST/raw."""
    from trainlab.precision import cpu_has_bf16

    datasets = {"synthetic": MNIST_SIZED_SYNTHETIC, **({"mnist": []} if mnist_files_present() else {})}
    presets = {"fp32": [], **({"bf16": ["trainer=bf16"]} if cpu_has_bf16() else {})}
    results = {}
    for data_name, data in datasets.items():
        for preset_name, preset in presets.items():
            runs = [timed_run(["experiment=mnist_cnn", *data, *preset, f"seed={seed}"], cwd) for seed in SEEDS]
            results[f"{data_name}_{preset_name}"] = {
                "seconds": [round(seconds, 1) for seconds, _ in runs],
                "test_acc": [acc for _, acc in runs],
            }
    return results


# --- 5. parallel multirun -----------------------------------------------------------------------
def multirun(launcher: str, cwd: Path) -> float:
    """The launcher benchmark's sweep: 4 short CNN jobs (scripts/benchmark_launchers.py)."""
    from benchmark_launchers import time_sweep

    options = {"joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], "basic": ["hydra/launcher=basic"]}
    return time_sweep(launcher, options[launcher], jobs=4, workdir=Path(tempfile.mkdtemp(dir=cwd)))


# --- 6. Optuna search, with and without pruning ------------------------------------------------------
SEARCH = [
    "hparams_search=optuna",
    "hydra.sweeper.n_trials=12",
    "optimized_metric=val/acc",
    "hydra.sweeper.direction=maximize",
    "hydra.sweeper.params={optimizer.weight_decay:0.0,model.net.dropout:0.0}",  # fixed: only lr and width vary
    "optimizer.lr=tag(log, interval(0.0001, 0.3))",
    "model.net.hidden=choice(32, 64, 128, 256)",
    "data.num_train=4000",
    "data.num_val=1000",
    "data.num_test=500",
    "trainer.max_epochs=8",
    "trainer.accelerator=cpu",
    "extras.print_config=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]
PRUNER = [
    "hydra/sweeper/pruner=median",
    "hydra.sweeper.pruner.n_startup_trials=3",
    "hydra.sweeper.pruner.n_warmup_steps=1",
]


def optuna_search(pruner: list[str], cwd: Path) -> dict:
    """One search as a user runs it (a subprocess), timed; the best val/acc read back from its study."""
    import optuna

    sweep_dir = Path(tempfile.mkdtemp(dir=cwd)) / "search"
    args = [*SEARCH, *pruner, f"hydra.sweep.dir={sweep_dir}", f"paths.log_dir={cwd}"]
    start = time.perf_counter()
    subprocess.run([str(BIN / "trainlab-train"), "-m", *args], cwd=cwd, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    study = optuna.load_study(study_name="train_optuna", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    states = [trial.state.name.lower() for trial in study.trials]
    return {
        "wall_s": round(seconds, 1),
        "best_val_acc": round(study.best_value, 4),
        "best_params": {key: round(value, 5) for key, value in study.best_params.items()},
        "trials": {state: states.count(state) for state in dict.fromkeys(states)},
    }


def search_section(cwd: Path) -> dict:
    import optuna

    plain, pruned = optuna_search([], cwd), optuna_search(PRUNER, cwd)
    return {
        "optuna": optuna.__version__,
        "command": "trainlab-train -m " + " ".join(SEARCH) + "  [+ " + " ".join(PRUNER) + "]",
        "no_pruner": plain,
        "median_pruner": pruned,
        "wall_time_cut": round(1 - pruned["wall_s"] / plain["wall_s"], 3),
        "best_val_acc_difference_points": round(100 * (plain["best_val_acc"] - pruned["best_val_acc"]), 2),
    }


# --- 7. bfloat16 against 32-bit ----------------------------------------------------------------
def precision_section(workdir: Path, num_train: int, repeats: int) -> dict:
    """The steady epoch of the hand-written loop and of the template, 32-bit against bf16, alternating, with
    the validation accuracy each reaches after EPOCHS epochs. The template in bf16 twice: bf16-mixed alone
    (as the hand-written loop adds it) and the `trainer=bf16` preset (bf16-mixed with channels-last batches)."""
    cfg, datamodule = template_setup(workdir, num_train, batch_size=128)
    preset = cfg.copy()
    with open_dict(preset):
        preset.model.channels_last = True

    def hand(bf16: bool) -> tuple[list[float], float]:
        return hand_written_fit(cfg, datamodule, bf16), HAND_WRITTEN_VAL_ACC[bf16]

    def template(config, precision: str) -> tuple[list[float], float]:
        return template_fit(config, datamodule, precision)[1], TEMPLATE_VAL_ACC[precision]

    contenders = {
        "hand_fp32": lambda: hand(False),
        "hand_bf16": lambda: hand(True),
        "template_fp32": lambda: template(cfg, "32-true"),
        "template_bf16_mixed": lambda: template(cfg, "bf16-mixed"),
        "template_bf16_preset": lambda: template(preset, "bf16-mixed"),
    }
    runs: dict[str, list[float]] = {name: [] for name in contenders}
    accuracy: dict[str, float] = {}
    for _ in range(repeats):  # A B C D E A B C D E ...
        for name, fit in contenders.items():
            epochs, accuracy[name] = fit()
            runs[name].append(steady_epoch(epochs))
    epoch = {name: median_of(times) for name, times in runs.items()}
    return {
        "images": len(datamodule.splits["train"][0]),
        **{f"{name}_epoch_s": round(seconds, 3) for name, seconds in epoch.items()},
        "hand_bf16_speedup": round(epoch["hand_fp32"] / epoch["hand_bf16"], 3),
        "template_bf16_mixed_speedup": round(epoch["template_fp32"] / epoch["template_bf16_mixed"], 3),
        "template_bf16_preset_speedup": round(epoch["template_fp32"] / epoch["template_bf16_preset"], 3),
        "val_acc_after_3_epochs": {name: round(value, 4) for name, value in accuracy.items()},
    }


def epoch_section(cfg, datamodule, repeats: int) -> dict:
    """Section 1: the hand-written loop, the template and a bare Lightning Trainer, alternating."""
    hand, template, floor = [], [], []
    for _ in range(repeats):  # A B C A B C ...
        hand.append(hand_written_fit(cfg, datamodule))
        template.append(template_fit(cfg, datamodule))
        floor.append(lightning_floor_fit(cfg, datamodule))
    hand_steady = [steady_epoch(epochs) for epochs in hand]
    template_steady = [steady_epoch(epochs) for _, epochs in template]
    floor_steady = [steady_epoch(epochs) for _, epochs in floor]
    hand_epoch, template_epoch, floor_epoch = map(median_of, (hand_steady, template_steady, floor_steady))
    hand_fit = median_of([sum(epochs) for epochs in hand])
    template_whole = median_of([seconds for seconds, _ in template])
    images = len(datamodule.splits["train"][0])
    return {
        "epoch": {
            "images": images,
            "hand_written_s": round(hand_epoch, 3),
            "template_s": round(template_epoch, 3),
            "hand_written_images_per_s": round(images / hand_epoch),
            "template_images_per_s": round(images / template_epoch),
            "ratio_template_over_hand": round(template_epoch / hand_epoch, 3),
            "bare_lightning_s": round(floor_epoch, 3),
            "ratio_bare_lightning_over_hand": round(floor_epoch / hand_epoch, 3),
            "ratio_template_over_bare_lightning": round(template_epoch / floor_epoch, 3),
            # The same ratios within each repeat (contenders run back to back), then their median: the
            # machine's drift over the whole section cancels out of these.
            "paired_ratio_template_over_hand": paired_ratio(template_steady, hand_steady),
            "paired_ratio_template_over_bare_lightning": paired_ratio(template_steady, floor_steady),
            "paired_ratio_bare_lightning_over_hand": paired_ratio(floor_steady, hand_steady),
        },
        f"fit_{EPOCHS}_epochs": {
            "hand_written_s": round(hand_fit, 3),
            "template_s": round(template_whole, 3),
            "ratio_template_over_hand": round(template_whole / hand_fit, 3),
        },
    }


def startup_section(workdir: Path, repeats: int) -> dict:
    """Section 2: whole processes, alternating."""
    first, fdr = alternate(lambda: to_first_step(workdir), lambda: process_time(["debug=fdr"], workdir), repeats)
    return {"to_first_step_s": round(median_of(first), 2), "debug_fdr_s": round(median_of(fdr), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-train", type=int, default=20000)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and samples, to check the script works")
    parser.add_argument(
        "--only",
        choices=["epoch", "accuracy", "search", "precision", "scaling"],
        help="run one section and update it in benchmarks/results.*",
    )
    args = parser.parse_args()
    # As trainlab-train does: importing Lightning turns on torch's NVML GPU probe, which Adam repeats on
    # every step (a failed library load each time, on a machine without GPUs). All contenders gain alike.
    stop_gpu_probes_without_gpus()
    if args.quick:
        args.repeats, args.num_train = 1, 2000
    if args.only == "search":
        with tempfile.TemporaryDirectory() as tmp:
            write_results({"optuna_search_12_trials": search_section(Path(tmp))}, update=True)
        return
    if args.only == "scaling":
        from benchmark_scaling import scaling_section

        write_results({"scaling": scaling_section()}, update=True)
        return
    if args.only == "epoch":
        with tempfile.TemporaryDirectory() as tmp:
            cfg, datamodule = template_setup(Path(tmp), args.num_train, batch_size=128)
            write_results(
                {**epoch_section(cfg, datamodule, args.repeats), "startup": startup_section(Path(tmp), args.repeats)},
                update=True,
            )
        return
    if args.only == "accuracy":
        with tempfile.TemporaryDirectory() as tmp:
            write_results({"time_to_accuracy": time_to_accuracy(Path(tmp))}, update=True)
        return
    if args.only == "precision":
        with tempfile.TemporaryDirectory() as tmp:
            write_results({"precision_bf16": precision_section(Path(tmp), args.num_train, args.repeats)}, update=True)
        return

    results: dict = {
        "machine": {
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        }
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cfg, datamodule = template_setup(workdir, args.num_train, batch_size=128)
        results.update(epoch_section(cfg, datamodule, args.repeats))
        results["startup"] = startup_section(workdir, args.repeats)
        results["data"] = {
            "build_synthetic_images_60k_s": round(
                median_of([build_synthetic_images(60000 if not args.quick else 6000) for _ in range(args.repeats)]), 2
            ),
            "stream_epoch_s": round(median_of([stream_epoch(datamodule) for _ in range(args.repeats)]), 4),
        }
        results["time_to_accuracy"] = time_to_accuracy(workdir) if not args.quick else None
        try:
            import hydra_plugins.hydra_joblib_launcher  # noqa: F401

            joblib_s, basic_s = alternate(
                lambda: multirun("joblib", workdir), lambda: multirun("basic", workdir), args.repeats
            )
            results["multirun_4_jobs"] = {
                "joblib_s": round(median_of(joblib_s), 1),
                "basic_s": round(median_of(basic_s), 1),
                "ratio_joblib_over_basic": round(median_of(joblib_s) / median_of(basic_s), 3),
            }
        except ImportError:
            results["multirun_4_jobs"] = None
        results["precision_bf16"] = precision_section(workdir, args.num_train, args.repeats)
        results["optuna_search_12_trials"] = search_section(workdir) if not args.quick else None
    if not args.quick:
        from benchmark_scaling import scaling_section

        results["scaling"] = scaling_section()

    results["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    write_results(results)


def write_results(results: dict, update: bool = False) -> None:
    """benchmarks/results.json and .md; `update` replaces only the given sections of what is there."""
    out = ROOT / "benchmarks"
    out.mkdir(exist_ok=True)
    if update and (out / "results.json").is_file():
        results = {**json.loads((out / "results.json").read_text()), **results}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    print(markdown(results))


def markdown(results: dict) -> str:
    lines = ["| measure | value |", "|---|---|"]
    for section, values in results.items():
        if values is None:
            lines.append(f"| {section} | not measured |")
            continue
        for key, value in values.items():
            lines.append(f"| {section}.{key} | {value} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
