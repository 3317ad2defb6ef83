"""Which checkpoint a run starts from: `ckpt_path=last` resumes the run in hydra.run.dir; none starts fresh."""

from pathlib import Path

from omegaconf import DictConfig, open_dict

from trainlab.errors import ConfigError
from trainlab.utils.run_folder import refuse_folder_with_checkpoints

LAST = "last"


def checkpoint_dir(cfg: DictConfig) -> Path:
    """The folder this run writes checkpoints to (the model_checkpoint callback's, else the run folder's)."""
    dirpath = ((cfg.get("callbacks") or {}).get("model_checkpoint") or {}).get("dirpath")
    return Path(dirpath) if dirpath else Path(cfg.paths.output_dir) / "checkpoints"


def resolve_checkpoint(cfg: DictConfig) -> str | None:
    """Turn `ckpt_path=last` into this run folder's last.ckpt (set in cfg), and refuse clashes with other runs.

    A fresh training run (ckpt_path=null) must not write into a folder that holds checkpoints
    already: it would mix its checkpoints with another run's and overwrite that run's last.ckpt.
    """
    ckpt_path = cfg.get("ckpt_path")
    folder = checkpoint_dir(cfg)
    if ckpt_path is None:
        if cfg.get("train", True):
            refuse_folder_with_checkpoints(folder)
        return None
    if ckpt_path == LAST:
        last = folder / "last.ckpt"
        if not last.is_file():
            raise ConfigError(
                f"ckpt_path=last found no last.ckpt in {folder}; set hydra.run.dir to the folder of the run to resume "
                "(e.g. hydra.run.dir=logs/train/runs/<timestamp>) or give a checkpoint file as ckpt_path=<path>."
            )
        ckpt_path = str(last)
        with open_dict(cfg):
            cfg.ckpt_path = ckpt_path  # the run config saved in new checkpoints names the real file
    return ckpt_path
