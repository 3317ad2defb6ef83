"""A checkpoint is data: the code its stored config names by `_target_` is built only when the project vouches for
it, through every way a checkpoint is loaded. Anything else is one line, and the file it names is left untouched."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import runkit
from runkit.config import ConfigError
from runkit.evaluation import evaluate, predict
from runkit.training import train
from runkit.trusted_code import TRUSTED_PACKAGES, Trust, check_trusted, defined_in
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import run_script
from tests.runkit.helpers.runs import SMALL_CNN, TINY_MLP
from trainlab.models.classification import ClassificationModule

RUN = [*TINY_MLP, "trainer.max_epochs=1", "logger=none", "test=false"]


@pytest.fixture(scope="module")
def own_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """last.ckpt of a tiny run of the template's own classes: a scheduler, a regularizer, the default callbacks."""
    run_dir = tmp_path_factory.mktemp("logs") / "mlp"
    train(compose_config("train", [*RUN, "scheduler=step", "regularizer=l2"], run_dir))
    return run_dir / "checkpoints" / "last.ckpt"


def writes(victim: Path) -> dict[str, Any]:
    return {"_target_": "builtins.open", "file": str(victim), "mode": "w"}


def imports(victim: Path) -> dict[str, Any]:
    return {"_target_": "importlib.import_module", "name": "antigravity"}


def through_a_trusted_module(victim: Path) -> dict[str, Any]:
    """torch.save, reached through a name that starts like a trusted package's."""
    return {"_target_": "torch.nn.modules.module.torch.save", "obj": 0, "f": str(victim)}


def a_handler(victim: Path) -> dict[str, Any]:
    return {"_target_": "logging.FileHandler", "filename": str(victim), "mode": "w"}


# Where in the stored config (the run's, under trainlab_config) the foreign code is put: the model's parts, the model
# itself, and sections loading never builds (callbacks).
PLACES: dict[str, Callable[[dict, dict], None]] = {
    "model.net": lambda run, code: run["model"].__setitem__("net", code),
    "model.net, inside a trusted class": lambda run, code: run["model"].__setitem__(
        "net", {"_target_": "torch.nn.Sequential", "_args_": [code]}
    ),
    "model.optimizer": lambda run, code: run["model"].__setitem__("optimizer", code),
    "model.scheduler": lambda run, code: run["model"].__setitem__("scheduler", {"scheduler": code}),
    "model.metrics": lambda run, code: run["model"]["metrics"].__setitem__("acc", code),
    "data": lambda run, code: run.__setitem__("data", code),
    "callbacks": lambda run, code: run["callbacks"].__setitem__("extra", code),
    "model": lambda run, code: run["model"].update(code),
}
CODE = [writes, imports, through_a_trusted_module, a_handler]


def craft(own: Path, folder: Path, place: str, code: Callable[[Path], dict[str, Any]]) -> tuple[Path, Path, str]:
    """A copy of `own` with foreign code at `place`: still plain data, so weights_only loads it. Returns the
    crafted file, the file its code would write, and the code's target."""
    checkpoint = torch.load(own, map_location="cpu", weights_only=True)
    victim = folder / "precious.txt"
    victim.write_text("the researcher's notes")
    foreign = code(victim)
    PLACES[place](checkpoint["trainlab_config"], foreign)
    crafted = folder / "shared.ckpt"
    torch.save(checkpoint, crafted)
    return crafted, victim, foreign["_target_"]


def by_eval(path: Path, tmp_path: Path) -> None:
    evaluate(compose_config("eval", [f"ckpt_path={path}"], tmp_path / "eval"))


def by_predict(path: Path, tmp_path: Path) -> None:
    predict(compose_config("predict", [f"ckpt_path={path}"], tmp_path / "predict"))


def by_load_model(path: Path, tmp_path: Path) -> None:
    runkit.load_model(path)


def by_resume(path: Path, tmp_path: Path) -> None:
    train(compose_config("train", [*RUN, f"ckpt_path={path}", "trainer.max_epochs=2"], tmp_path / "resumed"))


def by_finetuning(path: Path, tmp_path: Path) -> None:
    overrides = ["experiment=finetune", f"pretrained_ckpt={path}", *SMALL_CNN, "logger=none", "trainer.max_epochs=1"]
    train(compose_config("train", [*overrides, "callbacks.progress_bar=null"], tmp_path / "finetune"))


LOADERS = [by_eval, by_predict, by_load_model, by_resume, by_finetuning]


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("place", list(PLACES))
def test_foreign_code_anywhere_in_a_checkpoint_is_refused_by_every_loader(
    own_checkpoint: Path, tmp_path: Path, place: str, loader: Callable[[Path, Path], None]
) -> None:
    code = CODE[list(PLACES).index(place) % len(CODE)]  # each place with another kind of code, all kinds covered
    crafted, victim, target = craft(own_checkpoint, tmp_path, place, code)
    with pytest.raises(ConfigError) as error:
        loader(crafted, tmp_path)
    message = str(error.value)
    assert f"={target}, which is not code trainlab trusts, so nothing was built" in message
    assert message.endswith(f"if you trust this file, add trusted_packages=[{target.partition('.')[0]}].")
    assert "\n" not in message
    assert victim.read_text() == "the researcher's notes"


def test_the_command_line_refuses_in_one_line_and_leaves_the_file(own_checkpoint: Path, tmp_path: Path) -> None:
    crafted, victim, _ = craft(own_checkpoint, tmp_path, "model.net", writes)
    for script in ("eval", "predict"):
        result = run_script(script, [f"ckpt_path={crafted}"], cwd=tmp_path)
        assert result.returncode == 2
        assert (result.stdout + result.stderr).strip() == (
            f"Error: ckpt_path={crafted} names model.net._target_=builtins.open, which is not code trainlab trusts, "
            "so nothing was built; if you trust this file, add trusted_packages=[builtins]."
        )
        assert victim.read_text() == "the researcher's notes"


def test_trust_is_explicit_a_package_the_user_names_is_built(own_checkpoint: Path, tmp_path: Path) -> None:
    crafted, victim, _ = craft(own_checkpoint, tmp_path, "model.net", writes)
    with pytest.raises(Exception):  # noqa: B017 - the user vouched for open(), which truncates, then is no net
        evaluate(compose_config("eval", [f"ckpt_path={crafted}", "trusted_packages=[builtins]"], tmp_path / "eval"))
    assert victim.read_text() == ""


def test_the_runs_own_checkpoint_loads_everywhere(own_checkpoint: Path, tmp_path: Path) -> None:
    assert evaluate(compose_config("eval", [f"ckpt_path={own_checkpoint}"], tmp_path / "eval"))["test/acc"] > 0
    assert predict(compose_config("predict", [f"ckpt_path={own_checkpoint}"], tmp_path / "predict")).is_file()
    assert type(runkit.load_model(own_checkpoint)) is ClassificationModule


def test_a_class_the_users_own_config_names_is_trusted_exactly(tmp_path: Path) -> None:
    """A net from outside the trusted packages (here the tests' own) resumes, because the run's config names it;
    another class of the same module does not pass for it."""
    net = ["model.net._target_=tests.runkit.helpers.nets.TinyNet", "~model.net.hidden", "~model.net.dropout"]
    run_dir = tmp_path / "run"
    train(compose_config("train", [*RUN, *net], run_dir))
    last = run_dir / "checkpoints" / "last.ckpt"
    resumed = compose_config("train", [*RUN, *net, "ckpt_path=last", "trainer.max_epochs=2"], run_dir)
    assert train(resumed)["val/loss"] > 0
    trust = Trust.of(own_config={"model": {"net": {"_target_": "tests.runkit.helpers.nets.TinyNet"}}})
    assert trust.covers("tests.runkit.helpers.nets.TinyNet") and not trust.covers("tests.runkit.helpers.nets.Other")
    with pytest.raises(ConfigError, match="model.net._target_=tests.runkit.helpers.nets.TinyNet, which is not code"):
        runkit.load_model(last)  # a notebook has no config naming it: the user vouches with trusted_packages
    assert type(runkit.load_model(last, trusted_packages=["tests"])) is ClassificationModule


@pytest.mark.parametrize(
    ("target", "trusted"),
    [
        ("torch.nn.Linear", True),
        ("torch.optim.lr_scheduler.StepLR", True),
        ("torchmetrics.classification.MulticlassAccuracy", True),
        ("lightning.pytorch.callbacks.ModelCheckpoint", True),
        ("trainlab.nets.mlp.MLP", True),
        ("torch.nn.modules.module.torch.save", False),  # torch.save, imported by a trusted module
        ("runkit.checkpoints.os.replace", False),
        ("runkit.checkpoints.os", False),  # a module, not code of the project's
        ("torch.nnx.Linear", False),  # a name that merely begins like a trusted package's
        ("torch.save", False),
        ("os.system", False),
    ],
)
def test_code_is_trusted_by_its_name_and_by_where_it_is_defined(target: str, trusted: bool) -> None:
    assert Trust.of().covers(target) is trusted


def test_the_trusted_libraries_are_where_trainlab_looks_for_them() -> None:
    """Fails when a library moves a package the trust list names, so the list never silently trusts nothing."""
    for package in TRUSTED_PACKAGES:
        assert defined_in(package) is not None, package


def test_a_config_without_targets_or_with_tensors_passes() -> None:
    check_trusted({"weights": torch.zeros(3), "lr": 0.1, "layers": [1, 2]}, Trust.of(), "ckpt_path=x")
