"""Read what a run wrote for TensorBoard back with TensorBoard's own reader (scalars: trainlab.runs.reading)."""

from pathlib import Path
from typing import Any

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from trainlab.runs.reading import Curve


def values(curves: dict[str, Curve]) -> dict[str, list[float]]:
    """Each curve of read_scalars as its values alone, in the order TensorBoard returns them."""
    return {tag: [value for _, value in curve] for tag, curve in curves.items()}


def _load(log_dir: Path) -> EventAccumulator:
    """The TensorBoard run in log_dir: the folder itself, or the one folder below it holding event files (a
    sweep's job writes into `tensorboard/<what sets it apart>`)."""
    (run,) = {path.parent for path in log_dir.rglob("events.out.tfevents.*")} or {log_dir}
    accumulator = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def read_hparams(log_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """The HPARAMS tab's data of a run: its hyperparameter values and the names of its metrics."""
    accumulator = _load(log_dir)
    contents = accumulator.PluginTagToContent("hparams")
    hparams: dict[str, Any] = {}
    metric_tags: list[str] = []
    for content in contents.values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.HasField("session_start_info"):
            for name, value in data.session_start_info.hparams.items():
                kind = value.WhichOneof("kind")
                hparams[name] = getattr(value, kind)
        if data.HasField("experiment"):
            metric_tags = [info.name.tag for info in data.experiment.metric_infos]
    return hparams, metric_tags


def read_images(log_dir: Path) -> dict[str, list[tuple[int, bytes]]]:
    """Every image tag in a run folder's event files, with (step, encoded PNG) per event."""
    accumulator = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    accumulator.Reload()
    return {
        tag: [(event.step, event.encoded_image_string) for event in accumulator.Images(tag)]
        for tag in accumulator.Tags()["images"]
    }


def read_hparam_columns(log_dir: Path) -> list[str]:
    """The HPARAMS tab's hyperparameter columns, in the order the run's experiment summary lists them."""
    for content in _load(log_dir).PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.HasField("experiment"):
            return [info.name for info in data.experiment.hparam_infos]
    return []
