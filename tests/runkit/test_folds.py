"""k-fold settings the engine checks before a run, and a k-fold multirun: one job per fold."""

from pathlib import Path

import pytest

from runkit.config import validate_config
from runkit.runs.reading import read_scalars
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import run_script
from tests.runkit.helpers.tensorboard import read_hparams


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data.num_folds=5", "data.fold=5"],
            "data.fold=5 is out of range: expected a fold from 0 to 4 because data.num_folds=5; "
            "choose data.fold between 0 and 4.",
        ),
        (
            ["data.num_folds=1"],
            "data.num_folds=1 is out of range: expected a value >= 2; use data.num_folds=2 or more for cross-validation.",
        ),
        (
            ["data.fold=2"],
            "data.fold=2 is set but data.num_folds is null; set data.num_folds to the number of folds (more than 2), "
            "or leave data.fold=0 for the plain validation split.",
        ),
        (
            ["data.num_folds=5", "seed=null"],
            "data.num_folds=5 needs a fixed seed so that every fold's run cuts the same folds, but seed is null; "
            "set seed to a number (e.g. seed=0).",
        ),
        (["data.train_size=0"], "data.train_size=0 must be a positive number of samples, or null for all."),
    ],
)
def test_settings_that_name_no_fold_are_refused(overrides: list[str], message: str, run_dir: Path) -> None:
    with pytest.raises(ValueError) as error:
        validate_config(compose_config("train", ["data=synthetic_classification", *overrides], run_dir))
    assert str(error.value) == message


@pytest.mark.slow
def test_k_fold_multirun_writes_one_job_per_fold(tmp_path: Path) -> None:
    args = [
        "-m",
        "data=synthetic_classification",
        "model=mlp",
        "data.num_train=300",
        "data.num_val=60",
        "data.num_test=60",
        "trainer.max_epochs=1",
        "extras.print_config=false",
        "data.num_folds=3",
        "data.fold=range(3)",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    result = run_script("train", args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    jobs = sorted(path for path in sweep.iterdir() if path.is_dir())
    assert [job.name for job in jobs] == ["000_data.fold-0", "001_data.fold-1", "002_data.fold-2"]
    for fold, job in enumerate(jobs):
        hparams, _ = read_hparams(job)
        assert hparams["data.fold"] == str(fold)  # the key the sweep varies; integers go to TensorBoard as text
        assert {"val/acc", "test/acc"} <= set(read_scalars(job))
