"""Run experiment=overfit once per remedy and print the train/validation gap of each.

    .venv/bin/python scripts/overfit_study.py                        # every remedy, the experiment's settings
    .venv/bin/python scripts/overfit_study.py trainer.max_epochs=10  # extra overrides go to every run
    .venv/bin/python scripts/overfit_study.py --only none l2_dropout

Each remedy is a real `trainlab-train experiment=overfit ...` run with its own folder under
logs/overfit_study/<timestamp>/<remedy>/; the table is read back from the runs' TensorBoard files,
so `tensorboard --logdir logs/overfit_study/<timestamp>` overlays the same runs.
"""

import argparse
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from runkit.runs.reading import read_scalars

# The remedies, as the overrides that switch each one on. (data.augment is not among them yet.)
REMEDIES: dict[str, list[str]] = {
    "none": [],
    "l2": ["regularizer=l2", "regularizer.l2=1e-2"],
    "l1": ["regularizer=l1", "regularizer.l1=1e-4"],
    "dropout": ["model.net.dropout=0.5"],
    "l2_dropout": ["regularizer=l2", "regularizer.l2=1e-2", "model.net.dropout=0.5"],
    "early_stopping": ["callbacks.early_stopping.patience=3"],
    "more_data": ["data.num_train=5000"],
}
COLUMNS = ["gap/train_loss", "gap/val_loss", "gap/loss", "gap/acc", "val/loss_min", "test/acc", "epochs"]


def run_remedy(name: str, overrides: list[str], study_dir: Path) -> Path:
    """Train one remedy in its own process and return its run folder."""
    run_dir = study_dir / name
    command = [
        str(Path(sys.executable).parent / "trainlab-train"),
        "experiment=overfit",
        *REMEDIES[name],
        *overrides,
        f"hydra.run.dir={run_dir}",
        "extras.print_config=false",
        "callbacks.progress_bar=null",
        f"tags=[overfit_study,{name}]",
    ]
    print(f"[{name}] {' '.join(command[1:])}", flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return run_dir


def final_numbers(run_dir: Path) -> dict[str, float]:
    """The last value of each gap metric, the best validation loss, the test accuracy, and the epochs run."""
    scalars = {tag: [value for _, value in curve] for tag, curve in read_scalars(run_dir).items()}
    numbers = {name: values[-1] for name, values in scalars.items() if name in COLUMNS}
    numbers["val/loss_min"] = min(scalars["val/loss"])
    numbers["epochs"] = len(scalars["gap/loss"])
    return numbers


def print_table(results: dict[str, dict[str, float]]) -> None:
    print(f"\n{'remedy':<16}" + "".join(f"{column:>16}" for column in COLUMNS))
    for name, numbers in results.items():
        cells = "".join(f"{numbers.get(column, float('nan')):>16.4g}" for column in COLUMNS)
        print(f"{name:<16}{cells}")
    print(
        "\ngap/loss = val loss - train loss and gap/acc = train acc - val acc, both at the last epoch with "
        "dropout off; test/acc is that of the best checkpoint."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(REMEDIES), help="run only these remedies")
    parser.add_argument("--log-dir", default="logs", help="where logs/overfit_study/ is created (default: logs)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides passed to every run, e.g. trainer.max_epochs=10")
    args = parser.parse_args()
    study_dir = Path(args.log_dir).resolve() / "overfit_study" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
    results = {}
    for name in args.only or REMEDIES:
        results[name] = final_numbers(run_remedy(name, args.overrides, study_dir))
    print_table(results)
    print(f"\nRuns: {study_dir}\nCurves: tensorboard --logdir {study_dir}")


if __name__ == "__main__":
    main()
