"""Section `epoch`: what the template costs against a hand-written loop, per epoch and per fit, and how
long a whole `trainlab-train` process takes to start.

1. The same CNN on the same in-memory data for EPOCHS epochs, by the hand-written loop, through the
   template and through a bare Lightning Trainer, alternating (A B C A B C ...): the steady epoch
   (epochs after the first) and the whole fit.
2. Start-up, alternating: process start to the end of the first training step, `trainlab-train debug=fdr` to
   exit, and the floor they are held to: `import lightning.pytorch` in a venv of trainlab's required
   dependencies only (bench/minimal_venv.py).

Both parts train on `run.accelerator` (`--accelerator`), one device: with "gpu" the hand-written loop puts
its net and data on `cuda`, the template and the bare Trainer run with accelerator gpu, and the processes
with `trainer.accelerator=gpu trainer.devices=1` (debug=fdr's own CPU pin overridden). Each of the
section's entries says where it was measured (`device`: "cpu" or "gpu (its name)").
"""

import subprocess
import time
from pathlib import Path

from bench.common import BIN, Results, Run, median_of, paired_ratio, steady_epoch
from bench.fits import EPOCHS, hand_written_fit, lightning_floor_fit, template_fit
from bench.minimal_venv import import_lightning_s, minimal_python


def measure(run: Run) -> Results:
    """Both parts of the section, the epochs first; every entry labelled with the device it was measured on."""
    results = {**epoch_results(run), "startup": startup_results(run)}
    return {name: {"device": run.device_label, **values} for name, values in results.items()}


def epoch_results(run: Run) -> Results:
    """The hand-written loop, the template and a bare Lightning Trainer, alternating, on run.accelerator."""
    cfg, datamodule = run.template  # composed with run.accelerator's trainer overrides
    hand, template, floor = [], [], []
    for _ in range(run.repeats):  # A B C A B C ...
        hand.append(hand_written_fit(cfg, datamodule, device=run.device))
        template.append(template_fit(cfg, datamodule))
        floor.append(lightning_floor_fit(cfg, datamodule, accelerator=run.accelerator))
    hand_steady, template_steady, floor_steady = (
        [steady_epoch(fit.epochs) for fit in fits] for fits in (hand, template, floor)
    )
    hand_epoch, template_epoch, floor_epoch = map(median_of, (hand_steady, template_steady, floor_steady))
    hand_fit = median_of([fit.seconds for fit in hand])
    template_whole = median_of([fit.seconds for fit in template])
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


def process_time(args: list[str], cwd: Path) -> float:
    """Seconds of one whole `trainlab-train` process with these overrides, start to exit."""
    start = time.perf_counter()
    subprocess.run(
        [str(BIN / "trainlab-train"), *args, f"paths.log_dir={cwd}"], cwd=cwd, check=True, capture_output=True
    )
    return time.perf_counter() - start


def to_first_step(cwd: Path, trainer: list[str]) -> float:
    """Process start to the end of the first training step (one step, nothing after it), with the
    `trainer` overrides (the accelerator's)."""
    return process_time(
        [
            *trainer,
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


def startup_results(run: Run) -> Results:
    """Whole processes on run.accelerator, alternating: to the first step, `debug=fdr`, and (not with --quick,
    which would wait minutes for the venv) the floor, `import lightning.pytorch` in a minimal venv."""
    cwd, trainer = run.workdir, run.trainer_overrides
    floor_python = None if run.quick else minimal_python()
    first, fdr, floor = [], [], []
    if floor_python is not None:  # once, untimed: the minimal venv's files into the page cache, as .venv's are
        import_lightning_s(floor_python)
    for _ in range(run.repeats):  # A B C A B C ...
        first.append(to_first_step(cwd, trainer))
        fdr.append(process_time(["debug=fdr", *trainer], cwd))
        if floor_python is not None:
            floor.append(import_lightning_s(floor_python))
    results = {"to_first_step_s": round(median_of(first), 2), "debug_fdr_s": round(median_of(fdr), 2)}
    if floor:
        results["minimal_venv_import_lightning_s"] = round(median_of(floor), 2)
        results["paired_ratio_debug_fdr_over_import_lightning"] = paired_ratio(fdr, floor)
    return results
