"""Section `precision`: bfloat16 mixed precision against 32-bit, for the hand-written loop and for the
template, with the validation accuracy each reaches after EPOCHS epochs: what the speed-up costs.

The template runs in bf16 twice: bf16-mixed alone (as the hand-written loop adds it) and the
`trainer=bf16` preset (bf16-mixed with channels-last batches).
"""

from collections.abc import Callable

from omegaconf import DictConfig, open_dict

from bench.common import Results, Run, median_of, steady_epoch
from bench.fits import Fit, hand_written_fit, template_fit, template_setup


def measure(run: Run) -> Results:
    """The steady epoch of each contender, alternating A B C D E A B C D E ..., medians over the repeats."""
    cfg, datamodule = template_setup(run.workdir, run.num_train, batch_size=128)
    preset = cfg.copy()
    with open_dict(preset):
        preset.model.channels_last = True

    def template(config: DictConfig, precision: str) -> Callable[[], Fit]:
        return lambda: template_fit(config, datamodule, precision)

    contenders: dict[str, Callable[[], Fit]] = {
        "hand_fp32": lambda: hand_written_fit(cfg, datamodule, bf16=False),
        "hand_bf16": lambda: hand_written_fit(cfg, datamodule, bf16=True),
        "template_fp32": template(cfg, "32-true"),
        "template_bf16_mixed": template(cfg, "bf16-mixed"),
        "template_bf16_preset": template(preset, "bf16-mixed"),
    }
    runs: dict[str, list[float]] = {name: [] for name in contenders}
    accuracy: dict[str, float] = {}
    for _ in range(run.repeats):
        for name, fit in contenders.items():
            result = fit()
            runs[name].append(steady_epoch(result.epochs))
            accuracy[name] = result.val_acc  # the last repeat's: every repeat trains afresh, alike
    epoch = {name: median_of(times) for name, times in runs.items()}
    return {
        "precision_bf16": {
            "images": len(datamodule.splits["train"][0]),
            **{f"{name}_epoch_s": round(seconds, 3) for name, seconds in epoch.items()},
            "hand_bf16_speedup": round(epoch["hand_fp32"] / epoch["hand_bf16"], 3),
            "template_bf16_mixed_speedup": round(epoch["template_fp32"] / epoch["template_bf16_mixed"], 3),
            "template_bf16_preset_speedup": round(epoch["template_fp32"] / epoch["template_bf16_preset"], 3),
            "val_acc_after_3_epochs": {name: round(value, 4) for name, value in accuracy.items()},
        }
    }
