"""The command lines a run records and prints: the one that started it, the one that resumes it, and how a
console script of this environment is named so that a shell finds it."""

import shlex
import shutil
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from runkit.process.ddp import COMMAND_AT_START
from runkit.process.mode import in_multirun
from runkit.runs.resume import LAST, last_checkpoint

SWEEP_COMMAND_FILE = "sweep_command.txt"


def command_line() -> list[str]:
    """The command that started this run: in a multirun, the sweep's command as recorded when it started."""
    if in_multirun():
        recorded = Path(HydraConfig.get().sweep.dir) / SWEEP_COMMAND_FILE
        if recorded.is_file():
            return shlex.split(recorded.read_text())
        return list(COMMAND_AT_START)
    return list(sys.argv)


def resume_command(cfg: DictConfig) -> str:
    """The command that carries on a stopped run: the same one, resuming this folder's last.ckpt.

    In a multirun it is the same sweep into the same sweep folder, which skips finished jobs and
    resumes interrupted ones (see sweep_job_plan).
    """
    if in_multirun():
        return sweep_resume_command()
    args = [arg for arg in sys.argv[1:] if not arg.startswith(("ckpt_path=", "hydra.run.dir="))]
    if last_checkpoint(cfg).is_file():
        args.append(f"ckpt_path={LAST}")
    return shlex.join([sys.argv[0], *args, f"hydra.run.dir={cfg.paths.output_dir}"])


def sweep_resume_command() -> str:
    """The sweep's command into the sweep's folder: it skips finished jobs and resumes the others."""
    program, *args = command_line()
    args = [arg for arg in args if not arg.startswith("hydra.sweep.dir=")]
    return shlex.join([program, *args, f"hydra.sweep.dir={HydraConfig.get().sweep.dir}"])


def script_folders() -> list[Path]:
    """This environment's scripts folder, then those of the venvs whose packages it sees: .venv-extras sees
    .venv's through a .pth file, and programs such as tensorboard are only in .venv/bin."""
    folders = [Path(sys.executable).parent]
    for entry in map(Path, sys.path):
        venv = entry.parents[2] if entry.name == "site-packages" and len(entry.parents) > 2 else None
        if venv is not None and (venv / "pyvenv.cfg").is_file() and venv / "bin" not in folders:
            folders.append(venv / "bin")
    return folders


def program(name: str) -> str:
    """A console script of this environment as a shell finds it: its name when it is on the PATH, else its path."""
    folders = script_folders()
    installed = next((folder / name for folder in folders if (folder / name).is_file()), folders[0] / name)
    found = shutil.which(name)
    if found and Path(found).resolve() == installed.resolve():
        return name
    return shlex.quote(str(installed))


def tensorboard_command(log_dir: str | Path) -> str:
    """The command that serves these runs in TensorBoard, opening on their train-against-validation charts.
    This environment's Python by its path: a venv's python links to the system's, which `program` would name."""
    return f"{shlex.quote(sys.executable)} -m runkit.tensorboard --logdir {shlex.quote(str(log_dir))}"


def mlflow_command(store: str) -> str:
    """The command that serves an MLflow store and prints the link to each experiment's runs table, as `make
    mlflow` does; MLflow's own `mlflow ui` opens on its home page instead."""
    return f"{shlex.quote(sys.executable)} -m runkit.mlflow_ui {shlex.quote(store)} 127.0.0.1 5000"
