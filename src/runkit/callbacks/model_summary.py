"""The model in one line when fitting starts: its parts, their parameter count and size.

Lightning's ModelSummary and RichModelSummary print a table of every submodule, the metric objects
included: about 30 lines for the default CNN, with a column of zero FLOPs (Lightning counts FLOPs
only for a model with an `example_input_array`). The counts a researcher compares runs by are also
among the parameters MLflow and W&B record (`model/params_total`, `model/params_trainable`).
"""

import logging
from typing import Any

from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities.model_summary import get_human_readable_count

log = logging.getLogger(__name__)


class OneLineModelSummary(ModelSummary):
    """Lightning's ModelSummary of the module's direct children, logged as one line, e.g.
    `Model: net (CNN); 215 K parameters, 0.9 MB`. Being a ModelSummary, it stands in for the one
    Lightning would add by itself."""

    def __init__(self) -> None:
        super().__init__(max_depth=1)

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        columns = dict(summary_data)
        rows = zip(columns["Name"], columns["Type"], columns["Params"], strict=True)
        parts = [f"{name} ({kind})" for name, kind, count in rows if count.strip() != "0"]  # not the metrics
        frozen = total_parameters - trainable_parameters
        log.info(
            "Model: %s; %s parameters%s, %s",
            ", ".join(parts) or "no parameters",
            get_human_readable_count(total_parameters),
            f" ({get_human_readable_count(frozen)} frozen)" if frozen else "",
            readable_size(model_size),
        )


def readable_size(megabytes: float) -> str:
    """Lightning's model size (MB) in the unit that shows it: a small model is not `0.0 MB`."""
    size = megabytes * 1e6
    for unit, scale in (("MB", 1e6), ("KB", 1e3)):
        if size >= scale / 10:
            return f"{size / scale:.1f} {unit}"
    return f"{round(size)} bytes"
