"""Runs read back from their folders (status, config, overrides, curves), for trainlab-summarize and for the
final metrics of a run that had finished."""

import csv
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from runkit.runs.names import parse_overrides
from runkit.runs.resume import ATTEMPT_PREFIX, EVENT_FILES
from runkit.runs.status import read_status

Curve = list[tuple[int, float]]  # (step, value) points
LEADING_NUMBER = re.compile(r"(\d+)(.*)")  # a job folder: its number, then what its sweep varies


@dataclass
class RunRecord:
    """One run (a single run, or one job of a multirun) as it was left on disk."""

    path: Path
    name: str  # the folder relative to the summarised PATH
    overrides: dict[str, str]
    config: DictConfig
    sweeper: DictConfig
    status: str
    error: str | None
    scalars: dict[str, Curve] = field(default_factory=dict)

    def final(self, tag: str) -> float | None:
        curve = self.scalars.get(tag)
        return curve[-1][1] if curve else None


def find_run_folders(root: Path) -> list[Path]:
    """Every run folder under root (root itself included): folders holding `.hydra/overrides.yaml`."""
    folders = {path.parent.parent for path in root.rglob(".hydra/overrides.yaml")}
    return sorted(folders, key=lambda folder: natural_key(folder.relative_to(root)))


def natural_key(path: Path) -> tuple:
    """Sort job folders by their number, 999_... before 1000_... (and 9 before 10) rather than as text."""
    return tuple((0, int(m[1]), m[2]) if (m := LEADING_NUMBER.fullmatch(part)) else (1, 0, part) for part in path.parts)


def read_scalars(run_dir: Path) -> dict[str, Curve]:
    """Every scalar tag in the run's TensorBoard event files, as TensorBoard's own reader returns them.

    The points come in the order TensorBoard shows them; a resumed run's event files are named so
    that this is step order (see continue_event_files). The files are in the run folder itself, or in
    folders below it where a logger's config names one; a failed attempt set aside (attempt_<n>/) is no
    part of the run.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # slow to import

    curves: dict[str, Curve] = {}
    for log_dir in sorted({path.parent for path in run_dir.rglob(EVENT_FILES)}):
        if any(part.startswith(ATTEMPT_PREFIX) for part in log_dir.relative_to(run_dir).parts):
            continue
        accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
        with quiet_purges():
            accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            curves.setdefault(tag, []).extend((event.step, event.value) for event in accumulator.Scalars(tag))
    return curves


@contextmanager
def quiet_purges() -> Iterator[None]:
    """A resumed run's event files begin again at the step it resumed from, so the reader drops the points an
    interrupted attempt logged past its checkpoint, as TensorBoard's display does. That is what a resume means,
    but the reader warns of it ("Detected out of order event.step ...") on its logger, so it is quiet here."""
    tensorboard_log = logging.getLogger("tensorboard")
    level = tensorboard_log.level
    tensorboard_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tensorboard_log.setLevel(level)


def read_csv_scalars(run_dir: Path) -> dict[str, Curve]:
    """Every metric in the run's CSV log (`csv/metrics.csv`, one row per logging step), as (step, value) points."""
    curves: dict[str, Curve] = {}
    for path in sorted(run_dir.glob("csv/**/metrics.csv")):
        with path.open(newline="") as file:
            for row in csv.DictReader(file):
                step = int(row.get("step") or 0)
                for tag, value in row.items():
                    if tag != "step" and value not in ("", None):
                        curves.setdefault(tag, []).append((step, float(value)))
    return curves


def read_curves(run_dir: Path) -> dict[str, Curve]:
    """A run's curves from what it recorded itself, whichever loggers it had: its TensorBoard event files, else
    its CSV log, else the final metrics its status.yaml records (one point each; e.g. an MLflow- or W&B-only run)."""
    curves = read_scalars(run_dir) or read_csv_scalars(run_dir)
    if curves:
        return curves
    status = read_status(run_dir)
    recorded = dict(status.get("metrics") or {})
    return {tag: [(0, float(value))] for tag, value in recorded.items()}


def read_run(run_dir: Path, root: Path) -> RunRecord:
    hydra_dir = run_dir / ".hydra"
    hydra_file = hydra_dir / "hydra.yaml"
    hydra_cfg = OmegaConf.load(hydra_file).hydra if hydra_file.is_file() else OmegaConf.create({})
    config_file = hydra_dir / "config.yaml"
    status = read_status(run_dir)
    return RunRecord(
        path=run_dir,
        name=str(run_dir.relative_to(root)) if run_dir != root else run_dir.name,
        overrides=parse_overrides(list(OmegaConf.load(hydra_dir / "overrides.yaml"))),
        config=OmegaConf.load(config_file) if config_file.is_file() else OmegaConf.create({}),
        sweeper=hydra_cfg.get("sweeper") or OmegaConf.create({}),
        status=str(status.get("status")),
        error=status.get("error"),
        scalars=read_curves(run_dir),
    )


def final_metrics(run_dir: Path) -> dict[str, float]:
    """The last value of every scalar the run logged (see read_curves)."""
    return {tag: curve[-1][1] for tag, curve in read_curves(run_dir).items() if curve}
