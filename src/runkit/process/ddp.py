"""DDP under Hydra: Lightning starts a run's extra ranks by running its command line again."""

import logging
import os
import sys

from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict, read_write

from runkit.process.mode import in_multirun, process_rank

# Lightning starts ranks 1..N-1 by running the same command again (`sys.argv`; compat.lightning_rank_command) with
# `hydra.run.dir=<HydraConfig run.dir>` and `hydra.output_subdir=null` added, so every rank writes into
# rank 0's folder and only rank 0 saves `.hydra/`. Two things need help: every rank's log records would
# reach the run's log file (each line N times); and under `-m`, `sys.argv` holds the whole sweep and
# `run.dir` is not the job's folder, so each extra rank would start a sweep of its own, while the jobs
# run one after another in one process whose process group and launcher variables outlive each job.
MULTIRUN_FLAGS = ("-m", "--multirun")

# Lightning's launcher writes these into the launching process's environment; a second job in the
# same process would read LOCAL_RANK as "started by an external launcher" and wait for ranks that
# never come. Their values from before the first job are put back at the start of every job.
LAUNCHER_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
ENVIRONMENT_AT_START = {name: os.environ.get(name) for name in LAUNCHER_VARIABLES}
# The command line as the user typed it: a multirun's jobs rewrite sys.argv for DDP's extra ranks.
COMMAND_AT_START = list(sys.argv)


def quiet_other_ranks() -> None:
    """Ranks other than 0 pass only warnings and errors to the log handlers (file and console)."""
    if process_rank() > 0:
        for handler in logging.getLogger().handlers:
            handler.setLevel(logging.WARNING)


def launch_ranks_as_this_job() -> None:
    """In a multirun job, make DDP's extra ranks rerun this one job, in this job's folder.

    Rewrites what Lightning's launcher reads: the command line becomes this job's own overrides
    (no `-m`, no sweep lists) and Hydra's run.dir becomes the job's output folder.
    """
    if not in_multirun():
        return
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # The previous job's process group: its other ranks have exited, so this job needs a new one.
        torch.distributed.destroy_process_group()
    for name, value in ENVIRONMENT_AT_START.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    hydra_cfg = HydraConfig.get()
    flags = [arg for arg in sys.argv[1:] if arg.startswith("-") and arg not in MULTIRUN_FLAGS]
    sys.argv = [sys.argv[0], *flags, *hydra_cfg.overrides.task]
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir


def pass_to_other_ranks(override: str) -> None:
    """Add an override that the job decided on itself (say ckpt_path=last) to the command line that DDP's extra
    ranks run, so that they run the same job."""
    sys.argv.append(override)
