"""Every place where trainlab leans on a library's internals, because no public API does the job.

Each entry says what is missing upstream and the versions it was checked against; tests/runkit/test_compat.py
fails when a library changes what an entry relies on. Nothing outside this module uses a library's
internals. Imports are inside the functions: each library loads only where its entry is used.
"""

import json
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

# --- Hydra 1.3.8 ------------------------------------------------------------------------------------------------
# Hydra's compose API composes a config without setting HydraConfig, which a run reads for the chosen options
# (model=cnn, ...) and its output folder. `HydraConfig.instance().set_config` is what @hydra.main does itself.


def set_hydra_config(cfg: DictConfig) -> None:
    """Make a composed config (with its `hydra` section) the HydraConfig of this process, as @hydra.main does."""
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(cfg)


# A composed config keeps no record of the file each key came from. ConfigLoader.compute_defaults_list (a public
# method) computes the files Hydra composes, but what it returns is undocumented: a DefaultsList whose `defaults`
# are ResultDefaults, each a file's config path and the package it was composed into.
def composed_files(loader: Any, config_name: str, overrides: Sequence[str]) -> list[tuple[str, str]]:
    """(config path, e.g. 'experiment/fast', package, e.g. '' or 'trainer') of every file Hydra composes, in order."""
    from hydra.types import RunMode

    defaults = loader.compute_defaults_list(config_name, list(overrides), RunMode.RUN).defaults
    return [(str(default.config_path), default.package or "") for default in defaults if default.config_path]


# --- Lightning 2.6.6 --------------------------------------------------------------------------------------------
# Under Hydra, Lightning's subprocess launcher (strategy ddp) starts ranks 1..N-1 with the command from its private
# `_hydra_subprocess_cmd`: this process's `sys.argv` plus `hydra.run.dir=<HydraConfig run.dir>` and
# `hydra.output_subdir=null`. process/ddp.py rewrites sys.argv and run.dir so that a multirun job's ranks rerun
# that job alone; there is no public hook to give Lightning the command instead.


def lightning_rank_command(local_rank: int) -> Sequence[str]:
    """The command Lightning runs for DDP rank `local_rank` of this Hydra run (what process/ddp.py prepares)."""
    from lightning.fabric.strategies.launchers.subprocess_script import _hydra_subprocess_cmd

    command, _ = _hydra_subprocess_cmd(local_rank)
    return command


# Lightning's RichProgressBar labels the training bar from the zero-based epoch (`Epoch 4/4` for max_epochs=5),
# through its private `_get_train_description(current_epoch)`, and draws the label as it adds the bar's task, before
# any public hook could change it. trainlab counts epochs from 1 (callbacks/progress_bar.py).


class RichEpochLabel:
    """Mixed into a RichProgressBar subclass (before it): the training bar's label is `self.train_label(epoch)`."""

    def _get_train_description(self, current_epoch: int) -> str:
        return self.train_label(current_epoch)

    def train_label(self, current_epoch: int) -> str:
        raise NotImplementedError


# --- Optuna 5.1.0 -----------------------------------------------------------------------------------------------
# A search's job reports to its own trial, which the sweeper asked for in another process. Optuna makes a trial
# object only for a new trial (study.ask); an existing one is reached through the Trial constructor, which
# Optuna's docs call not meant for direct use.


def reopen_trial(study: Any, number: int) -> Any:
    """The running trial `number` of `study` (an optuna.Study), to report intermediate values and ask the pruner."""
    import optuna

    storage = study._storage  # the storage the study was loaded with: Study has no public accessor for it
    study_id = storage.get_study_id_from_name(study.study_name)
    return optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, number))


# --- torch 2.14.1 and TensorBoard 2.21.0 ------------------------------------------------------------------------
# SummaryWriter.add_hparams writes the HPARAMS summary into a new sub-run and adds a point to every metric's
# curve. trainlab writes it into the run's own folder, next to the curves, with torch's summary builder and
# event-file writer, and marks the keys a sweep varies as `differs` (no public API sets that flag).


def hparams_summaries(params: dict[str, Any], metrics: dict[str, float], differing: set[str]) -> list[Any]:
    """TensorBoard's three HPARAMS summaries (experiment, session start, session end) for one run."""
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
    from torch.utils.tensorboard.summary import hparams

    experiment, session_start, session_end = hparams(params, metrics)
    plugin_data = experiment.value[0].metadata.plugin_data
    content = HParamsPluginData.FromString(plugin_data.content)
    for info in content.experiment.hparam_infos:
        info.differs = info.name in differing
    plugin_data.content = content.SerializeToString()
    return [experiment, session_start, session_end]


def write_summaries(log_dir: str | Path, summaries: list[Any]) -> None:
    """Write summaries into an event file of their own in `log_dir`."""
    from torch.utils.tensorboard.writer import FileWriter

    writer = FileWriter(str(log_dir))
    for summary in summaries:
        writer.add_summary(summary)
    writer.close()


# --- wandb 0.31.0 -----------------------------------------------------------------------------------------------
# wandb has no public Python reader for an offline run: its core (a Go binary) reads the transaction log
# (`run-<id>.wandb`) when `wandb sync` uploads it. The file is a 7-byte W&B header, then LevelDB's log format
# (32 KiB blocks of chunks, each with a 7-byte header: checksum, length, kind), and each whole record is a
# protobuf `wandb_internal_pb2.Record`. The tests read what a run logged to W&B through this reader
# (tests/runkit/test_loggers.py fails when the format changes).
WANDB_HEADER = b":W&B"
WANDB_BLOCK_SIZE = 32 * 1024
WANDB_CHUNK_HEADER = struct.Struct("<IHB")  # checksum, length, kind
WANDB_FULL, WANDB_LAST = 1, 4  # chunk kinds that end a record (FIRST and MIDDLE continue it)


@dataclass
class WandbOfflineRun:
    """What a W&B offline run recorded: its name, config, last summary values and history rows."""

    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


def wandb_records(path: Path) -> Iterator[Any]:
    """The protobuf records of a W&B transaction log, in order."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    if not data.startswith(WANDB_HEADER):
        raise ValueError(f"{path} is not a W&B transaction log")
    position, pending = 7, b""
    while position + WANDB_CHUNK_HEADER.size <= len(data):
        left_in_block = WANDB_BLOCK_SIZE - position % WANDB_BLOCK_SIZE
        _, length, kind = WANDB_CHUNK_HEADER.unpack_from(data, position)
        if left_in_block < WANDB_CHUNK_HEADER.size or kind == 0:  # a block's zero padding
            position += left_in_block
            continue
        start = position + WANDB_CHUNK_HEADER.size
        pending += data[start : start + length]
        position = start + length
        if kind in (WANDB_FULL, WANDB_LAST):
            yield Record.FromString(pending)
            pending = b""


def wandb_item_key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)  # val/acc is stored as nested keys ['val', 'acc']


def read_wandb_offline_run(run_folder: Path) -> WandbOfflineRun:
    """The run's name, config, last summary values and history rows, from its only offline run."""
    (log,) = run_folder.glob("wandb/offline-run-*/run-*.wandb")
    run = WandbOfflineRun()
    for record in wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.name = record.run.display_name
        elif kind == "config":
            run.config.update({wandb_item_key(item): json.loads(item.value_json) for item in record.config.update})
        elif kind == "summary":
            run.summary.update({wandb_item_key(item): json.loads(item.value_json) for item in record.summary.update})
        elif kind == "history":
            run.history.append({wandb_item_key(item): json.loads(item.value_json) for item in record.history.item})
    return run
