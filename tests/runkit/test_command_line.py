"""A command-line mistake that Hydra refuses while composing is one trainlab line with exit code 2, and nothing is
written; a command Hydra accepts is never refused."""

import os
import subprocess
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig

from runkit.cli import FULL_ERROR, composition_errors_raised, restore_full_error_setting
from runkit.config import CONFIG_DIR, CommandLine, ConfigError, check_multirun, compose, explain, read_command_line
from runkit.config.command_line import compose_command
from tests.runkit.helpers.config import group_options
from tests.runkit.helpers.process import run_script

# A bad indent in a user's own experiment file: `min_epochs` is indented under the value of `max_epochs`.
BAD_YAML = "# @package _global_\ntrainer:\n  max_epochs: 3\n   min_epochs: 1\n"


def the_one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def mistake(overrides: list[str], config_name: str = "train", config_dir: Path | None = None) -> str | None:
    """The line a single run of these overrides ends with: Hydra composes, trainlab explains what it refused."""
    command = CommandLine("trainlab-train", config_name, tuple(overrides), str(config_dir) if config_dir else None)
    with pytest.raises(Exception) as error:
        compose_command(command, overrides)
    return explain(error.value, command)


# --- the console scripts: one line, exit code 2, no folder --------------------------------------------------------
@pytest.mark.parametrize(
    ("script", "args", "line"),
    [
        (
            "train",
            ["trainer.max_epoch=3"],
            "Error: trainer.max_epoch is not a key of the config; did you mean trainer.max_epochs=3?",
        ),
        (
            "train",
            ["model=cnnn"],
            f"Error: model=cnnn is not an option of model; the options are: {', '.join(group_options('model'))} "
            "(did you mean cnn?).",
        ),
        (
            "train",
            ["paths.data_dir=/tmp/my (data)"],
            "Error: the override paths.data_dir=/tmp/my (data) could not be parsed (mismatched input ' (' expecting "
            """<EOF>); check its brackets and quotes, and quote a value meant as text, e.g. "paths.data_dir='/tmp/my """
            """(data)'".""",
        ),
        (  # a sweep's mistake is found before the sweep folder is written
            "train",
            ["-m", "trainer.max_epoch=1,2"],
            "Error: trainer.max_epoch is not a key of the config; did you mean trainer.max_epochs=1,2?",
        ),
        (  # the script's own config: eval.yaml has no optimizer, predict.yaml no model
            "eval",
            ["ckpt_path=x", "trainer.max_epoch=3"],
            "Error: trainer.max_epoch is not a key of the config; did you mean trainer.max_epochs=3?",
        ),
        (
            "predict",
            ["ckpt_path=x", "model=cnn"],
            "Error: predict.yaml has no model in its defaults for model=cnn to replace; +model=cnn adds it.",
        ),
    ],
    ids=["key", "option", "grammar", "sweep", "eval", "predict"],
)
def test_mistake_hydra_refuses_is_one_line_exit_2_and_no_folder(
    script: str, args: list[str], line: str, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    result = run_script(script, [*args, f"paths.log_dir={logs}"], cwd=tmp_path)
    assert the_one_error_line(result) == line
    assert not logs.exists()


def test_yaml_mistake_in_a_users_config_file_names_file_line_and_column(tmp_path: Path) -> None:
    mine = tmp_path / "configs" / "experiment" / "mine.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text(BAD_YAML)
    args = ["-cd", str(tmp_path / "configs"), "experiment=mine", f"paths.log_dir={tmp_path / 'logs'}"]
    result = run_script("train", args, cwd=tmp_path)
    assert the_one_error_line(result) == (
        f"Error: {mine}:4:14: this config file is not valid YAML: mapping values are not allowed here; "
        "fix the file there."
    )
    assert not (tmp_path / "logs").exists()


def test_full_traceback_of_a_composition_error_is_one_setting_away(tmp_path: Path) -> None:
    result = run_script("train", ["trainer.max_epoch=3"], cwd=tmp_path, env={FULL_ERROR: "1"})
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "is not in struct" in result.stderr


def test_good_command_with_hydras_own_syntax_runs_as_before(tmp_path: Path) -> None:
    args = [
        "--cfg=job",
        "-cn",
        "train",
        "+trainer.foo=1",
        "++trainer.max_epochs=2",
        "~trainer.min_epochs",
        "hydra.job.chdir=false",
        "experiment=example",
        "debug=fdr",
        "hydra/launcher=slurm",
        "local=example",
        "paths.data_dir=/tmp/my data",  # Hydra takes spaces inside a value
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    result = run_script("train", args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "  max_epochs: 2\n" in result.stdout and "  foo: 1\n" in result.stdout
    assert "data_dir: /tmp/my data\n" in result.stdout and result.stderr == ""


# --- what each refusal says ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            ["optimizer.learning_rate=0.01"],  # a short name no spelling distance finds
            "optimizer.learning_rate is not a key of the config; did you mean optimizer.lr=0.01?",
        ),
        (  # only a section can hold the deeper key: trainer, not the boolean `train`
            ["trainr.max_epochs=3"],
            "trainr is not a key of the config; did you mean trainer.max_epochs=3?",
        ),
        (["~trainer.max_epoch"], "trainer.max_epoch is not a key of the config; did you mean ~trainer.max_epochs?"),
        (
            ["model=mlp", "model.net.hiden=[32]"],  # the keys of the model chosen on the same command line
            "model.net.hiden is not a key of the config; did you mean model.net.hidden=[32]?",
        ),
        (
            ["trainer.foo=1"],
            "trainer.foo is not a key of the config; to add it, write +trainer.foo=1, or trainlab-train --cfg job "
            "lists the keys.",
        ),
        (["hydra.job.chdr=true"], "hydra.job.chdr is not a key of the config; did you mean hydra.job.chdir=true?"),
        (
            ["+trainer.max_epochs=3"],
            "trainer.max_epochs is already in the config, so it cannot be added with +; set it with "
            "trainer.max_epochs=3.",
        ),
        (
            ["optimizer.lr=0.1,0.01"],
            "optimizer.lr=0.1,0.01 is a sweep over several values: run it with -m (--multirun); for a single value "
            """that is a list write optimizer.lr=[0.1,0.01], for text "optimizer.lr='0.1,0.01'".""",
        ),
        (
            ["hydra/launcher=slurmm"],
            "hydra/launcher=slurmm is not an option of hydra/launcher; the options are: "
            "basic, joblib, slurm, submitit_local, submitit_slurm (did you mean slurm?).",
        ),
        (
            ["tags=[a,b"],
            "the override tags=[a,b could not be parsed (no viable alternative at input '[a,b'); check its brackets "
            """and quotes, and quote a value meant as text, e.g. "tags='[a,b'".""",
        ),
        (["a b=1"], "'a b=1' is not an override: write key=value, e.g. trainer.max_epochs=3."),
    ],
)
def test_refusal_names_the_fix(overrides: list[str], line: str) -> None:
    assert mistake(overrides) == line


def test_an_option_a_config_file_asks_for_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "wrong.yaml").write_text("# @package _global_\ndefaults:\n  - override /model: cnnn\n")
    assert mistake(["experiment=wrong"], config_dir=tmp_path) == (
        "model=cnnn is not an option of model (a config file asks for it); the options are: "
        f"{', '.join(group_options('model'))} (did you mean cnn?)."
    )


def test_unknown_config_name_lists_the_configs() -> None:
    assert mistake([], config_name="trian") == (
        "--config-name=trian is not a config of trainlab-train; the configs are: eval, predict, train "
        "(did you mean train?)."
    )


# --- reading the command line ---------------------------------------------------------------------------------
def test_reads_hydras_flags_and_the_overrides() -> None:
    command = read_command_line(["-m", "-cn", "eval", "--config-dir=configs", "a=1", "+b=2"], "train")
    assert command == CommandLine("trainlab-train", "eval", ("a=1", "+b=2"), str(Path("configs").resolve()), True)
    assert read_command_line(["--cfg", "job", "--resolve", "-p", "trainer", "x=1"], "eval") == CommandLine(
        "trainlab-eval", "eval", ("x=1",)
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--hydra-help"],
        ["--info", "defaults"],
        ["--version"],
        ["--shell-completion"],
        ["-cp", "elsewhere"],
        ["--config-path=elsewhere"],
        ["--multi", "a=1"],  # an abbreviation argparse accepts
        ["a=1", "-m", "b=2"],  # overrides on both sides of a flag: Hydra's parser refuses them itself
        ["--experimental-rerun", "config.pickle"],
    ],
)
def test_steps_aside_for_what_it_does_not_read(argv: list[str]) -> None:
    assert read_command_line(argv, "train") is None


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["-m", "--cfg", "job"],
            "use only one of -m (--multirun), -r (--run) and --cfg; --cfg shows a single run's config.",
        ),
        (["--resolve"], "--resolve works only with --cfg, e.g. --cfg job --resolve."),
    ],
)
def test_flags_hydra_refuses_together_are_one_line(argv: list[str], line: str) -> None:
    with pytest.raises(ConfigError, match="^" + line.replace("(", r"\(").replace(")", r"\)") + "$"):
        read_command_line(argv, "train")


# --- multiruns: checked before the sweep folder is written, never refused when Hydra accepts them ---------------
@pytest.mark.parametrize("experiment", sorted(path.stem for path in (Path(CONFIG_DIR) / "experiment").glob("*.yaml")))
def test_every_experiment_passes_the_multirun_check(experiment: str) -> None:
    check_multirun(read_command_line(["-m", f"experiment={experiment}", "seed=1,2"], "train"))


@pytest.mark.parametrize(
    "overrides",
    [
        ["optimizer.lr=0.1,0.01", "debug=fdr"],
        ["seed=range(1,4)", "model=glob(*)"],
        ["hparams_search=optuna", "optimizer.lr=tag(log,interval(0.0001,0.1))", "hydra.sweeper.n_trials=2"],
        ["hydra/launcher=slurm", "local=example", "+trainer.foo=1,2", "++seed=3", "~trainer.min_epochs"],
        ["optimizer=adam,sgd", "optimizer.lr=choice(0.1,0.01)", "model=cnn,mlp"],
    ],
)
def test_a_sweep_hydra_accepts_passes_the_multirun_check(overrides: list[str]) -> None:
    check_multirun(read_command_line(["-m", *overrides], "train"))


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            ["model=cnn,cnnn"],
            f"model=cnnn is not an option of model; the options are: {', '.join(group_options('model'))} "
            "(did you mean cnn?).",
        ),
        (["hydra.job.chdir=true,false"], "hydra.job.chdir=true,false: a multirun cannot sweep over Hydra's own "),
        (["seed=[1,2"], "the override seed=[1,2 could not be parsed"),
        # an optional group's missing option, not swept: Hydra composes it as nothing, so each job would fail alone
        (["debug=fdrr", "seed=1,2"], "debug=fdrr is not an option of debug; the options are: fdr, limit, overfit"),
        (["local=nonesuch", "seed=1,2"], "local=nonesuch is not an option of local; the options are: "),
        (["experiment=mnist_cnnn", "seed=1,2"], "experiment=mnist_cnnn is not an option of experiment; "),
        # swept: refused as model=cnn,cnnn is, not one failed job in the sweep
        (["experiment=example,no_such_experiment"], "experiment=no_such_experiment is not an option of experiment; "),
    ],
)
def test_a_sweep_mistake_is_found_before_any_job(overrides: list[str], line: str) -> None:
    with pytest.raises(ConfigError) as error:
        check_multirun(read_command_line(["-m", *overrides], "train"))
    assert str(error.value).startswith(line)


# --- Hydra raises what it would print only until the task starts -------------------------------------------------
@pytest.mark.parametrize("users", [None, "0"])
def test_the_task_sees_the_users_own_full_error_setting(users: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if users is None:
        monkeypatch.delenv(FULL_ERROR, raising=False)
    else:
        monkeypatch.setenv(FULL_ERROR, users)
    with composition_errors_raised():
        assert os.environ[FULL_ERROR] == "1"  # while Hydra composes
        restore_full_error_setting()  # what exit_on_user_error does as the task starts
        assert os.environ.get(FULL_ERROR) == users
    assert os.environ.get(FULL_ERROR) == users


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("experiment=mnist_cnnn", "experiment=mnist_cnnn is not an option of experiment; the options are: "),
        ("debug=fdx", "debug=fdx is not an option of debug; the options are: fdr, limit, overfit, profiler"),
    ],
)
def test_a_missing_option_of_an_optional_group_is_refused_not_skipped(override: str, line: str, tmp_path: Path) -> None:
    """Hydra composes an optional group's missing option as nothing: the run would train the defaults instead."""
    with pytest.raises(ConfigError) as refused:
        compose("train", [override], tmp_path / "run")
    assert str(refused.value).startswith(line) and "(did you mean" in str(refused.value)


def test_only_options_chosen_on_the_command_line_are_checked(tmp_path: Path) -> None:
    """`optional local: default` in train.yaml names a file git ignores: a clone without it is no mistake."""
    compose("train", [], tmp_path / "default")
    assert HydraConfig.get().runtime.choices.local == "default"
    compose("train", ["experiment=example", "local=example"], tmp_path / "chosen")
    assert HydraConfig.get().runtime.choices.experiment == "example"
