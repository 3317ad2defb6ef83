"""Summarise a multirun: `trainlab-summarize PATH [--metric M] [--mode min|max] [--group-by KEY ...]`.

PATH is a multirun folder (or any folder above several runs). One row per run: the overrides that
vary between runs, its status, the optimised metric's final and best values and the final test
metrics, sorted by the optimised metric (runs an Optuna search pruned come after the finished ones:
their values are from an early epoch; failed runs last). Runs that differ only by a grouping key
(`seed`, `data.fold`) are also averaged into mean ± std rows. The tables are printed and written next
to the runs as summary.csv, summary_grouped.csv and summary.md, and the validation curves of all runs
are drawn in summary.svg (it opens in any browser). A search's folder starts with where the search stands
(runkit.sweep_progress): trials done, pruned, failed, running and pending, the best so far, and its workers'
SLURM states.
"""

import argparse
import csv
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from runkit.config import ConfigError, exit_with_error
from runkit.runs.names import short_value
from runkit.runs.reading import Curve, RunRecord, find_run_folders, read_run
from runkit.sweep_progress import progress_lines

DEFAULT_GROUP_KEYS = ("seed", "data.fold")
MAXIMISED_NAMES = ("acc", "f1", "auc", "precision", "recall", "r2")
Row = dict[str, object]


@dataclass
class Summary:
    metric: str
    mode: str
    varying: list[str]
    metric_columns: list[str]
    rows: list[Row]
    grouped: list[Row]
    runs: dict[str, RunRecord]
    group_keys: list[str]


# --- what to show ---------------------------------------------------------------------------------
def varying_overrides(runs: Sequence[RunRecord]) -> list[str]:
    """Override keys whose value is not the same in every run, in the order they were given."""
    keys = list(dict.fromkeys(key for run in runs for key in run.overrides))
    return [key for key in keys if len({run.overrides.get(key, "") for run in runs}) > 1]


def optimised_metric(runs: Sequence[RunRecord]) -> str:
    """The `optimized_metric` most runs were configured with."""
    names = Counter(str(run.config.get("optimized_metric")) for run in runs if run.config.get("optimized_metric"))
    return names.most_common(1)[0][0] if names else "val/loss"


def metric_mode(runs: Sequence[RunRecord], metric: str) -> str:
    """min or max: the Optuna search's direction or the monitor's mode for this metric, else by its name."""
    for run in runs:
        direction = str(run.sweeper.get("direction", ""))
        if run.config.get("optimized_metric") == metric and direction in ("minimize", "maximize"):
            return direction[:3]
        monitor = run.config.get("monitor") or {}
        if monitor.get("metric") == metric and monitor.get("mode") in ("min", "max"):
            return str(monitor["mode"])
    return "max" if any(name in metric.rsplit("/", 1)[-1] for name in MAXIMISED_NAMES) else "min"


def best(values: Sequence[float], mode: str) -> float | None:
    finite = [value for value in values if math.isfinite(value)]
    if not finite:
        return None
    return min(finite) if mode == "min" else max(finite)


# --- the tables -----------------------------------------------------------------------------------
def run_row(run: RunRecord, varying: Sequence[str], metric: str, mode: str, test_tags: Sequence[str]) -> Row:
    row: Row = {"run": run.name, **{key: run.overrides.get(key, "") for key in varying}, "status": run.status}
    curve = run.scalars.get(metric, [])
    row[f"{metric} final"] = curve[-1][1] if curve else None
    row[f"{metric} best"] = best([value for _, value in curve], mode)
    for tag in test_tags:
        row[tag] = run.final(tag)
    row["error"] = run.error or ""
    return row


def sort_key(row: Row, column: str, mode: str) -> tuple[int, float]:
    """Finished runs first, best first; then runs a search pruned (their value is from an early epoch);
    failed runs and missing values last."""
    value = row.get(column)
    if row.get("status") == "failed" or not isinstance(value, float) or not math.isfinite(value):
        return (2, 0.0)
    return (1 if row.get("status") == "pruned" else 0, value if mode == "min" else -value)


def mean_std(values: Sequence[object]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1) of the finite numbers; std is None for fewer than two."""
    finite = [float(v) for v in values if isinstance(v, float) and math.isfinite(v)]
    if not finite:
        return None, None
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else None


def group_rows(
    rows: Sequence[Row], varying: Sequence[str], group_keys: Sequence[str], metric_columns: Sequence[str]
) -> list[Row]:
    """One row per setting (the varying overrides other than group_keys): mean ± std over its ok runs.

    Pruned runs are counted in the status but left out of the mean: they stopped at an early epoch."""
    setting_keys = [key for key in varying if key not in group_keys]
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row[key] for key in setting_keys), []).append(row)
    grouped = []
    for setting, members in groups.items():
        ok = [row for row in members if row["status"] == "ok"]
        pruned = sum(row["status"] == "pruned" for row in members)
        failed = len(members) - len(ok) - pruned
        ended = [f"{count}/{len(members)} {name}" for name, count in (("pruned", pruned), ("failed", failed)) if count]
        entry: Row = {
            **dict(zip(setting_keys, setting, strict=True)),
            "runs": len(members),
            "status": ", ".join(ended) or "ok",
        }
        for column in metric_columns:
            entry[f"{column} mean"], entry[f"{column} std"] = mean_std([row[column] for row in ok])
        grouped.append(entry)
    return grouped


def summarize(
    root: Path, metric: str | None = None, mode: str | None = None, group_keys: Sequence[str] = DEFAULT_GROUP_KEYS
) -> Summary:
    """Read every run under root and build the per-run and grouped tables."""
    runs = [read_run(folder, root) for folder in find_run_folders(root)]
    if not runs:
        raise ConfigError(
            f"No runs found under {root} (no .hydra/overrides.yaml); pass a multirun folder "
            f"such as logs/train/multiruns/<timestamp> or a folder above several runs."
        )
    metric = metric or optimised_metric(runs)
    mode = mode or metric_mode(runs, metric)
    varying = varying_overrides(runs)
    test_tags = sorted({tag for run in runs for tag in run.scalars if tag.startswith("test/") and tag != metric})
    metric_columns = [f"{metric} final", f"{metric} best", *test_tags]
    rows = [run_row(run, varying, metric, mode, test_tags) for run in runs]
    rows.sort(key=lambda row: sort_key(row, f"{metric} final", mode))
    grouped: list[Row] = []
    if any(key in varying for key in group_keys):
        grouped = group_rows(rows, varying, group_keys, metric_columns)
        grouped.sort(key=lambda row: sort_key(row, f"{metric} final mean", mode))
    return Summary(
        metric, mode, varying, metric_columns, rows, grouped, {run.name: run for run in runs}, list(group_keys)
    )


# --- output ---------------------------------------------------------------------------------------
def cell(value: object) -> str:
    """A table cell: numbers as the runs' names show them (4 significant digits), '-' for nothing."""
    return "-" if value is None else short_value(str(value)).replace("|", "\\|")


def markdown_table(rows: Sequence[Row]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[column]) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def grouped_for_display(summary: Summary) -> list[Row]:
    """Grouped rows with each metric as one 'mean ± std' cell."""
    shown = []
    for row in summary.grouped:
        entry = {key: value for key, value in row.items() if not key.endswith((" mean", " std"))}
        for column in summary.metric_columns:
            mean, std = row[f"{column} mean"], row[f"{column} std"]
            entry[column] = "-" if mean is None else f"{mean:.4g}" + ("" if std is None else f" ± {std:.2g}")
        shown.append(entry)
    return shown


def markdown(summary: Summary, root: Path) -> str:
    order = "lowest" if summary.mode == "min" else "highest"
    parts = [
        f"# Runs under {root}",
        "",
        f"Sorted by `{summary.metric}` (final value, {order} first).",
        "",
        markdown_table(summary.rows),
    ]
    if summary.grouped:
        keys = ", ".join(f"`{key}`" for key in summary.group_keys)
        parts += [
            "",
            f"## Mean ± std over runs that differ only by {keys} (sample std, n - 1)",
            "",
            markdown_table(grouped_for_display(summary)),
        ]
    return "\n".join(parts) + "\n"


def write_csv(rows: Sequence[Row], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({key: "" if value is None else value for key, value in row.items()} for row in rows)


# The figure is SVG written out by hand: a text file any browser opens, drawn without matplotlib, which stays out of
# .venv (torchmetrics imports it at every run's start whenever it is installed: runkit/optional.py).
WIDTH, HEIGHT = 960, 540
PLOT_LEFT, PLOT_TOP, PLOT_RIGHT, PLOT_BOTTOM = 80, 40, 660, 480  # the axes' box; the legend is right of it
MAX_LEGEND_ROWS = 20
COLORS = ("#1f6fb4", "#e8772e", "#2ca02c", "#d62728", "#8c5fbf", "#8c564b", "#d45fb0", "#6f6f6f", "#a8a82a", "#1fb4c4")
DASHES = {"failed": "6 4", "pruned": "2 3"}  # failed runs dashed, pruned ones dotted


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values (steps of 1, 2 or 5 times a power of ten) from low to high."""
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(factor * power for factor in (1, 2, 5, 10) if factor * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [first + index * step for index in range(int((high - first) / step + 1e-9) + 1)]


def axis_range(values: Sequence[float]) -> tuple[float, float]:
    """The values' span and 3% more each side, so that no point sits on the frame (a single value: 10%)."""
    low, high = min(values), max(values)
    pad = (high - low) * 0.03 if high > low else abs(low) * 0.1 or 1.0
    return low - pad, high + pad


def plot_curves(summary: Summary, path: Path) -> None:
    """The validation curve of every run in one SVG figure; failed runs dashed, pruned ones dotted."""
    tag = summary.metric if summary.metric.startswith("val/") else "val/loss"
    curves = []
    for row in summary.rows:
        points = [
            (step, value) for step, value in summary.runs[str(row["run"])].scalars.get(tag, []) if math.isfinite(value)
        ]
        if points:
            label = " ".join(f"{key}={row[key]}" for key in summary.varying) or str(row["run"])
            curves.append((label, str(row["status"]), points))
    path.write_text(svg_figure(tag, len(summary.rows), curves))


def svg_figure(tag: str, runs: int, curves: Sequence[tuple[str, str, Curve]]) -> str:
    """The figure's SVG text: axes with round ticks, one polyline per curve, a legend of up to MAX_LEGEND_ROWS."""
    steps = [step for _, _, points in curves for step, _ in points] or [0]
    values = [value for _, _, points in curves for _, value in points] or [0.0]
    (x_low, x_high), (y_low, y_high) = axis_range(steps), axis_range(values)

    def x(step: float) -> float:
        return PLOT_LEFT + (step - x_low) / (x_high - x_low) * (PLOT_RIGHT - PLOT_LEFT)

    def y(value: float) -> float:
        return PLOT_BOTTOM - (value - y_low) / (y_high - y_low) * (PLOT_BOTTOM - PLOT_TOP)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{(PLOT_LEFT + PLOT_RIGHT) / 2}" y="24" text-anchor="middle" font-size="15">'
        f"{escape(f'{tag} of {runs} runs')}</text>",
        f'<rect x="{PLOT_LEFT}" y="{PLOT_TOP}" width="{PLOT_RIGHT - PLOT_LEFT}" height="{PLOT_BOTTOM - PLOT_TOP}" '
        'fill="none" stroke="#444"/>',
    ]
    for step in nice_ticks(x_low, x_high):
        parts.append(
            f'<line x1="{x(step):.1f}" y1="{PLOT_BOTTOM}" x2="{x(step):.1f}" y2="{PLOT_BOTTOM + 5}" stroke="#444"/>'
        )
        parts.append(f'<text x="{x(step):.1f}" y="{PLOT_BOTTOM + 19}" text-anchor="middle">{step:g}</text>')
    for value in nice_ticks(y_low, y_high):
        parts.append(
            f'<line x1="{PLOT_LEFT}" y1="{y(value):.1f}" x2="{PLOT_RIGHT}" y2="{y(value):.1f}" stroke="#e4e4e4"/>'
        )
        parts.append(f'<text x="{PLOT_LEFT - 8}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.4g}</text>')
    parts.append(f'<text x="{(PLOT_LEFT + PLOT_RIGHT) / 2}" y="{PLOT_BOTTOM + 42}" text-anchor="middle">step</text>')
    parts.append(
        f'<text x="20" y="{(PLOT_TOP + PLOT_BOTTOM) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 20 {(PLOT_TOP + PLOT_BOTTOM) / 2})">{escape(tag)}</text>'
    )
    for index, (label, status, points) in enumerate(curves):
        color, dash = COLORS[index % len(COLORS)], DASHES.get(status)
        coordinates = " ".join(f"{x(step):.1f},{y(value):.1f}" for step, value in points)
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<g class="curve"><title>{escape(label)} ({escape(status)})</title>')
        parts.append(f'<polyline points="{coordinates}" fill="none" stroke="{color}" stroke-width="1.8"{dashes}/>')
        parts += [f'<circle cx="{x(step):.1f}" cy="{y(value):.1f}" r="2.5" fill="{color}"/>' for step, value in points]
        parts.append("</g>")
        if len(curves) <= MAX_LEGEND_ROWS:
            row_y = PLOT_TOP + 8 + index * 20
            parts.append(
                f'<line x1="{PLOT_RIGHT + 16}" y1="{row_y}" x2="{PLOT_RIGHT + 46}" y2="{row_y}" stroke="{color}" '
                f'stroke-width="1.8"{dashes}/><text x="{PLOT_RIGHT + 52}" y="{row_y + 4}">{escape(label)}</text>'
            )
    return "\n".join([*parts, "</svg>"]) + "\n"


def write_outputs(summary: Summary, root: Path, plot: bool = True) -> list[Path]:
    written = [root / "summary.csv", root / "summary.md"]
    write_csv(summary.rows, written[0])
    written[1].write_text(markdown(summary, root))
    if summary.grouped:
        written.append(root / "summary_grouped.csv")
        write_csv(summary.grouped, written[-1])
    if plot:
        written.append(root / "summary.svg")
        plot_curves(summary, written[-1])
    return written


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="trainlab-summarize", description=__doc__.split("\n\n")[1])
    parser.add_argument("path", type=Path, help="a multirun folder, or a folder above several runs")
    parser.add_argument("--metric", help="the metric to sort by (default: the runs' optimized_metric)")
    parser.add_argument("--mode", choices=("min", "max"), help="whether lower or higher is better")
    parser.add_argument(
        "--group-by",
        nargs="*",
        default=list(DEFAULT_GROUP_KEYS),
        metavar="KEY",
        help="overrides averaged over in the grouped table (default: seed data.fold)",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip summary.svg")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    root = args.path.resolve()
    try:
        if not root.is_dir():
            raise ConfigError(
                f"{args.path} is not a folder; pass a multirun folder such as logs/train/multiruns/<timestamp>."
            )
        progress = progress_lines(root)
        for line in progress:
            print(line)
        if progress and not find_run_folders(root):
            return  # a search whose first trials are still starting: nothing else to show yet
        summary = summarize(root, args.metric, args.mode, args.group_by)
    except ConfigError as error:
        exit_with_error(error)
    print(markdown(summary, root))
    for path in write_outputs(summary, root, plot=not args.no_plot):
        print(f"Wrote {path}")


if __name__ == "__main__":
    main()
