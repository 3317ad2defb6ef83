"""trainlab-eval reproduces a run's test metrics from its checkpoint, and refuses bad paths clearly."""

import logging
from pathlib import Path

import pytest
import torch

from runkit.config import ConfigError
from runkit.evaluation import evaluate
from runkit.training import train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import run_script

SMALL = [
    "data.num_train=256",
    "data.num_val=64",
    "data.num_test=128",
    "data.batch_size=32",
    "trainer.max_epochs=2",
    "logger=none",
]


def test_eval_reproduces_the_runs_test_accuracy(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run_dir = tmp_path / "logs" / "run"
    metrics = train(compose_config("train", SMALL, run_dir))
    best = run_dir / "checkpoints" / "best.ckpt"  # the run's best checkpoint, by a name that never changes
    with caplog.at_level(logging.INFO, logger="runkit.evaluation"):
        evaluated = evaluate(compose_config("eval", [f"ckpt_path={best}"], tmp_path / "logs" / "eval"))
    saved = torch.load(best, map_location="cpu", weights_only=True)
    target = next((run_dir / "checkpoints").glob("epoch_*.ckpt")).name
    said = f"Testing {best} ({target}, saved after epoch {saved['epoch'] + 1}, step {saved['global_step']}); "
    said += f"output folder: {tmp_path / 'logs' / 'eval'}"
    assert [record.getMessage() for record in caplog.records if record.getMessage().startswith(said)]
    assert evaluated["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    assert evaluated["test/loss"] == pytest.approx(metrics["test/loss"], abs=1e-5)


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    cfg = compose_config("eval", [f"ckpt_path={tmp_path / 'nope.ckpt'}"], tmp_path / "eval")
    with pytest.raises(ConfigError, match=r"ckpt_path=.*nope.ckpt does not exist"):
        evaluate(cfg)


def test_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"this is not a checkpoint")
    cfg = compose_config("eval", [f"ckpt_path={garbage}"], tmp_path / "eval")
    with pytest.raises(ConfigError, match=r"garbage.ckpt is not a checkpoint \(torch.save did not write it\)"):
        evaluate(cfg)


class _RunsCodeOnLoad:
    def __reduce__(self):
        return (print, ("this ran while loading",))


def test_checkpoint_that_would_run_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _RunsCodeOnLoad()}, path)
    cfg = compose_config("eval", [f"ckpt_path={path}"], tmp_path / "eval")
    with pytest.raises(ConfigError, match=r"evil.ckpt holds objects that are not plain data and was refused"):
        evaluate(cfg)


@pytest.mark.slow  # a whole trainlab process (~5 s)
def test_cli_missing_checkpoint_exits_with_one_line(tmp_path: Path) -> None:
    result = run_script("eval", ["ckpt_path=missing.ckpt", f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: ckpt_path=missing.ckpt does not exist; give the path of a .ckpt file from a run's checkpoints/ folder."
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["eval", "predict"])
def test_a_config_mistake_fails_before_lightning_is_loaded(command: str, tmp_path: Path) -> None:
    args = ["ckpt_path=missing.ckpt", "trainer.max_epochs=-5", f"paths.log_dir={tmp_path / 'logs'}"]
    result = run_script(command, args, cwd=tmp_path, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert lines == [
        "Error: trainer.max_epochs=-5 is out of range: expected a value >= -1; "
        "use a positive number of epochs, or -1 for no limit."
    ]
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")
    }
    assert "omegaconf" in imported  # the import timing is really on
    assert "lightning" not in imported and "torch" not in imported
