"""Read what a run wrote for TensorBoard back with TensorBoard's own reader (scalars: runkit.runs.reading)."""

from pathlib import Path
from typing import Any

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalars
from tensorboard.plugins.hparams import metadata

from runkit.runs.reading import Curve


def values(curves: dict[str, Curve]) -> dict[str, list[float]]:
    """Each curve of read_scalars as its values alone, in the order TensorBoard returns them."""
    return {tag: [value for _, value in curve] for tag, curve in curves.items()}


def _load(log_dir: Path) -> EventAccumulator:
    """The TensorBoard run in log_dir: the run folder itself, or the one folder below it holding event files (a
    logger whose config names a sub-folder)."""
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
    for tag, content in contents.items():
        if tag == metadata.SESSION_START_INFO_TAG:
            for name, value in metadata.parse_session_start_info_plugin_data(content).hparams.items():
                hparams[name] = getattr(value, value.WhichOneof("kind"))
        if tag == metadata.EXPERIMENT_TAG:
            metric_tags = [info.name.tag for info in metadata.parse_experiment_plugin_data(content).metric_infos]
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
    content = _load(log_dir).PluginTagToContent(metadata.PLUGIN_NAME).get(metadata.EXPERIMENT_TAG)
    return (
        [] if content is None else [info.name for info in metadata.parse_experiment_plugin_data(content).hparam_infos]
    )


def read_custom_scalars(log_dir: Path) -> dict[str, dict[str, list[str]]]:
    """The Custom Scalars dashboard's layout of a run, the last one it wrote: {category: {chart: [tag regexes]}}."""
    accumulator = _load(log_dir)
    if custom_scalars.CONFIG_SUMMARY_TAG not in accumulator.Tags()["tensors"]:
        return {}
    last = accumulator.Tensors(custom_scalars.CONFIG_SUMMARY_TAG)[-1]
    layout = layout_pb2.Layout.FromString(last.tensor_proto.string_val[0])
    return {
        category.title: {chart.title: list(chart.multiline.tag) for chart in category.chart}
        for category in layout.category
    }
