"""Section `accuracy`: time to accuracy of `experiment=mnist_cnn` as a user runs it, seeds 1-3, 32-bit and
`trainer=bf16` (where the hardware has bf16): the whole-process seconds and the test accuracy of each run.
On MNIST-sized synthetic digits, and on the official MNIST files too when they are in data/MNIST/raw.

Every run trains on `run.accelerator` (`--accelerator`), one device: `trainer.accelerator=cpu|gpu
trainer.devices=1`, pinned, never the config's `auto`. bf16 is measured where that device computes it
natively. The entry says where it was measured (`device`: "cpu" or "gpu (its name)")."""

import subprocess
import sys
import time
from pathlib import Path

import torch

from bench.common import BIN, ROOT, Results, Run
from runkit.process.precision import cpu_has_bf16

MNIST_SIZED_SYNTHETIC = ["data=synthetic_images", "data.num_train=55000", "data.num_val=5000", "data.num_test=10000"]
SEEDS = (1, 2, 3)


def measure(run: Run) -> Results:
    """Every dataset with every precision preset, three seeds each."""
    datasets = {"synthetic": MNIST_SIZED_SYNTHETIC, **({"mnist": []} if mnist_files_present() else {})}
    presets = {"fp32": [], **({"bf16": ["trainer=bf16"]} if has_bf16(run.accelerator) else {})}
    results: Results = {"device": run.device_label}
    for data_name, data in datasets.items():
        for preset_name, preset in presets.items():
            runs = [timed_run(command(data, preset, seed, run.trainer_overrides), run.workdir) for seed in SEEDS]
            results[f"{data_name}_{preset_name}"] = {
                "seconds": [round(seconds, 1) for seconds, _ in runs],
                "test_acc": [acc for _, acc in runs],
            }
    return {"time_to_accuracy": results}


def command(data: list[str], preset: list[str], seed: int, trainer: list[str]) -> list[str]:
    """The overrides of one run: the recipe, its data, its precision preset, the seed and the `trainer`
    overrides that put it on the accelerator."""
    return ["experiment=mnist_cnn", *data, *preset, f"seed={seed}", *trainer]


def has_bf16(accelerator: str) -> bool:
    """Whether the device the runs train on computes bfloat16 natively (`trainer=bf16` refuses it elsewhere)."""
    if accelerator == "gpu":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return bool(cpu_has_bf16())


def mnist_files_present() -> bool:
    """Whether the official MNIST files were downloaded: the benchmark never downloads them itself."""
    raw = ROOT / "data" / "MNIST" / "raw"
    return (raw / "t10k-labels-idx1-ubyte").is_file() or (raw / "t10k-labels-idx1-ubyte.gz").is_file()


def timed_run(args: list[str], cwd: Path) -> tuple[float, float | None]:
    """(seconds, test/acc) of one whole `trainlab-train` process; test/acc is read from its final metrics line."""
    start = time.perf_counter()
    result = subprocess.run(
        [str(BIN / "trainlab-train"), *args, "extras.print_config=false", f"paths.log_dir={cwd}"],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:  # its accuracy reads None; say why, into the log (make gpu-check keeps it)
        print(f"trainlab-train {' '.join(args)} failed (exit {result.returncode}):", file=sys.stderr)
        print("\n".join(result.stderr.splitlines()[-15:]), file=sys.stderr)
    acc = next(
        (
            line.split("test/acc=")[1].split(",")[0]
            for line in result.stdout.splitlines() + result.stderr.splitlines()
            if "Final metrics" in line and "test/acc=" in line
        ),
        None,
    )
    return seconds, float(acc) if acc else None
