"""trainlab-summarize on a real multirun: numbers checked against the event files read independently."""

import csv
import statistics
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

from runkit.runs.reading import read_scalars
from runkit.summarize import group_rows, main, sort_key
from tests.runkit.helpers.process import run_script
from tests.runkit.helpers.tensorboard import values

SVG = "{http://www.w3.org/2000/svg}"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def summarized(seed_sweep: tuple[Path, str]) -> tuple[Path, str]:
    """The seed sweep after `trainlab-summarize` ran on it, and what the command printed."""
    sweep_dir, _ = seed_sweep
    result = run_script("summarize", [str(sweep_dir)], cwd=sweep_dir.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir, result.stdout


def test_one_row_per_job_with_numbers_from_its_event_files(summarized: tuple[Path, str]) -> None:
    sweep_dir, _ = summarized
    rows = read_csv(sweep_dir / "summary.csv")
    assert len(rows) == 6
    # Only the overrides that vary between jobs become columns.
    assert list(rows[0])[:4] == ["run", "optimizer.lr", "seed", "status"]
    for row in rows:
        job = sweep_dir / row["run"]
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert f"optimizer.lr={row['optimizer.lr']}" in overrides and f"seed={row['seed']}" in overrides
        if row["optimizer.lr"] == "-1":
            assert row["status"] == "failed"
            assert (
                row["error"]
                == "optimizer.lr=-1.0 is out of range: expected a learning rate > 0; use a small positive value, e.g. optimizer.lr=0.001."
            )
            assert row["val/loss final"] == row["test/acc"] == ""
            continue
        scalars = values(read_scalars(job))
        assert row["status"] == "ok"
        assert float(row["val/loss final"]) == pytest.approx(scalars["val/loss"][-1], abs=1e-6)
        assert float(row["val/loss best"]) == pytest.approx(min(scalars["val/loss"]), abs=1e-6)
        assert float(row["test/acc"]) == pytest.approx(scalars["test/acc"][-1], abs=1e-6)
        assert float(row["test/loss"]) == pytest.approx(scalars["test/loss"][-1], abs=1e-6)


def test_rows_are_sorted_by_the_optimised_metric_with_failed_jobs_last(summarized: tuple[Path, str]) -> None:
    sweep_dir, _ = summarized
    rows = read_csv(sweep_dir / "summary.csv")
    finals = [float(row["val/loss final"]) for row in rows if row["status"] == "ok"]
    assert len(finals) == 4
    assert finals == sorted(finals)  # val/loss: lower is better
    assert [row["status"] for row in rows] == ["ok"] * 4 + ["failed"] * 2


def test_seeds_of_one_setting_are_averaged(summarized: tuple[Path, str]) -> None:
    sweep_dir, _ = summarized
    runs = read_csv(sweep_dir / "summary.csv")
    groups = {row["optimizer.lr"]: row for row in read_csv(sweep_dir / "summary_grouped.csv")}
    assert set(groups) == {"0.05", "0.2", "-1"}
    assert "seed" not in groups["0.05"]
    for lr in ("0.05", "0.2"):
        finals = [float(row["val/loss final"]) for row in runs if row["optimizer.lr"] == lr]
        assert groups[lr]["runs"] == "2" and groups[lr]["status"] == "ok"
        assert float(groups[lr]["val/loss final mean"]) == pytest.approx(statistics.fmean(finals), abs=1e-6)
        assert float(groups[lr]["val/loss final std"]) == pytest.approx(statistics.stdev(finals), abs=1e-6)
    assert groups["-1"]["status"] == "2/2 failed"
    assert groups["-1"]["val/loss final mean"] == ""


def test_markdown_table_is_written_next_to_the_runs(summarized: tuple[Path, str]) -> None:
    sweep_dir, printed = summarized
    markdown = (sweep_dir / "summary.md").read_text()
    assert printed.startswith(markdown)  # the printed table is the written one
    assert "| run | optimizer.lr | seed | status | val/loss final | val/loss best |" in markdown
    grouped_lines = [line for line in markdown.splitlines() if line.startswith(("| 0.05 |", "| 0.2 |"))]
    assert len(grouped_lines) == 2 and all(" ± " in line for line in grouped_lines)
    assert "| -1 | 2 | 2/2 failed | - |" in markdown


def test_every_jobs_validation_curve_is_drawn_without_optional_packages(summarized: tuple[Path, str]) -> None:
    """summary.svg, written in .venv (no matplotlib): one line per job with a curve, its points in the order and
    at the heights of the job's val/loss values, and a legend naming each by its overrides."""
    sweep_dir, printed = summarized
    assert f"Wrote {sweep_dir / 'summary.svg'}" in printed and "skipped" not in printed
    svg = ElementTree.parse(sweep_dir / "summary.svg").getroot()
    curves = {
        group.find(f"{SVG}title").text: group.find(f"{SVG}polyline").get("points").split()
        for group in svg.iter(f"{SVG}g")
        if group.get("class") == "curve"
    }
    rows = [row for row in read_csv(sweep_dir / "summary.csv") if row["status"] == "ok"]
    assert set(curves) == {f"optimizer.lr={row['optimizer.lr']} seed={row['seed']} (ok)" for row in rows}
    for row in rows:
        points = curves[f"optimizer.lr={row['optimizer.lr']} seed={row['seed']} (ok)"]
        losses = [value for _, value in read_scalars(sweep_dir / row["run"])["val/loss"]]
        heights = [-float(point.split(",")[1]) for point in points]  # SVG's y grows downwards
        assert len(heights) == len(losses) > 1
        assert sorted(range(len(losses)), key=losses.__getitem__) == sorted(
            range(len(heights)), key=heights.__getitem__
        )
    legend = [text.text for text in svg.iter(f"{SVG}text")]
    assert "val/loss of 6 runs" in legend and "optimizer.lr=0.05 seed=1" in legend


def test_group_keys_are_configurable(seed_sweep: tuple[Path, str], capsys: pytest.CaptureFixture) -> None:
    sweep_dir, _ = seed_sweep
    main([str(sweep_dir), "--group-by", "optimizer.lr", "--no-plot"])
    groups = read_csv(sweep_dir / "summary_grouped.csv")
    assert sorted(row["seed"] for row in groups) == ["1", "2"]
    assert all(row["runs"] == "3" and row["status"] == "1/3 failed" for row in groups)
    main([str(sweep_dir)])  # leave the default summary for the other tests
    capsys.readouterr()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("missing", "Error: {path} is not a folder; pass a multirun folder such as logs/train/multiruns/<timestamp>."),
        ("empty", "Error: No runs found under {path} (no .hydra/overrides.yaml); pass a multirun folder"),
    ],
)
def test_a_path_without_runs_is_one_line_error(
    path: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith(message.format(path=tmp_path / path))


def test_pruned_runs_sort_after_finished_ones_and_stay_out_of_the_mean() -> None:
    """A trial an Optuna search pruned stopped at an early epoch: neither a failure nor a finished run."""
    rows = [
        {"run": "0", "seed": "1", "status": "failed", "m": None},
        {"run": "1", "seed": "1", "status": "pruned", "m": 0.9},
        {"run": "2", "seed": "2", "status": "ok", "m": 0.5},
        {"run": "3", "seed": "3", "status": "ok", "m": 0.7},
    ]
    assert [row["run"] for row in sorted(rows, key=lambda row: sort_key(row, "m", "max"))] == ["3", "2", "1", "0"]
    [group] = group_rows(rows, ["seed"], ["seed"], ["m"])
    assert group["status"] == "1/4 pruned, 1/4 failed"
    assert group["m mean"] == pytest.approx(0.6)
