"""run_info.yaml, code.diff and config_tree.log: what reproduces a run (its command, git commit and the changes of
a dirty tree, package versions, config); and the few lines that say on the console what a run is."""

import platform
import shlex
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from runkit.config import ConfigError
from runkit.runs.commands import command_line

if TYPE_CHECKING:
    import rich.tree

RUN_INFO_FILE = "run_info.yaml"
CODE_DIFF_FILE = "code.diff"  # a dirty tree's changes; a resumed run's are code_1.diff, ...

# The distributions whose versions change what a run computes or how it is configured.
TRACKED_PACKAGES = ("torch", "lightning", "hydra-core", "torchmetrics", "omegaconf", "torchvision")

# The repository the code was installed from (editable install): src/runkit/runs -> root.
REPO_ROOT = Path(__file__).resolve().parents[3]


def git(*args: str, repo: Path = REPO_ROOT) -> str | None:
    """Output of a git command in the repository, or None where git or the repository is missing."""
    try:
        result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def git_state(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """The commit the code is at, and whether files differ from it (a dirty tree is not fully reproducible)."""
    commit = git("rev-parse", "HEAD", repo=repo)
    if not commit:
        return {"commit": None, "dirty": None}
    changes = git("status", "--porcelain", repo=repo)
    return {"commit": commit, "dirty": bool(changes) if changes is not None else None}


def code_changes(repo: Path = REPO_ROOT) -> str:
    """What a dirty tree holds beyond its commit: `git diff HEAD`, after the untracked files listed as comments,
    so that the code behind a result can be recovered (apply the diff to the commit, copy the files back)."""
    untracked = (git("ls-files", "--others", "--exclude-standard", repo=repo) or "").splitlines()
    listed = [f"# untracked, not in this diff: {name}" for name in untracked]
    return "\n".join([*listed, git("diff", "HEAD", repo=repo) or ""]) + "\n"


def write_code_diff(path: Path, repo: Path = REPO_ROOT) -> bool:
    """Save the tree's changes to `path` when it is dirty; whether it did."""
    if not git_state(repo).get("dirty"):
        return False
    path.write_text(code_changes(repo))
    return True


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def collect_run_info(cfg: DictConfig) -> dict[str, Any]:
    tags = cfg.get("tags")
    return {
        "task_name": cfg.get("task_name"),
        "tags": list(tags) if tags is not None else [],
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(command_line()),
        "cwd": str(Path.cwd()),
        "git": git_state(),
        "python": platform.python_version(),
        "packages": package_versions(),
    }


def write_run_info(cfg: DictConfig, run_dir: Path) -> Path:
    """Write the run's metadata into its folder (run_info_1.yaml, ... when a run is resumed there)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path, number = run_dir / RUN_INFO_FILE, 0
    while path.exists():
        number += 1
        path = run_dir / f"{Path(RUN_INFO_FILE).stem}_{number}.yaml"
    info = collect_run_info(cfg)
    number = path.stem.removeprefix(Path(RUN_INFO_FILE).stem)  # "" for the first record, "_1", ... after
    diff = path.with_name(f"{Path(CODE_DIFF_FILE).stem}{number}.diff")
    if info["git"].get("dirty") and write_code_diff(diff):
        info["git"]["diff"] = diff.name
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(info)))
    return path


# --- the config, on the console and in the run folder ------------------------------------------------
CONFIG_TREE_FILE = "config_tree.log"  # the whole composed config, as a tree; .hydra/config.yaml holds it as YAML

# The config groups a researcher swaps, in the order the console summary names them; a group left unset is not named.
SUMMARY_GROUPS = (
    "experiment",
    "data",
    "model",
    "optimizer",
    "scheduler",
    "regularizer",
    "trainer",
    "callbacks",
    "logger",
    "debug",
)


def console_config(setting: Any) -> str:
    """What `extras.print_config` puts on the console: summary (true too), tree, or none (false or null)."""
    if setting is True:
        return "summary"
    if setting is False or setting is None:
        return "none"
    if setting in ("summary", "tree"):
        return setting
    raise ConfigError(f"extras.print_config={setting} is not a choice; use summary, tree or false.")


def config_summary() -> list[str]:
    """The run's config in two lines, from Hydra's record of the run: the option chosen in each config group,
    and the values the command line changed (nothing outside a Hydra run)."""
    if not HydraConfig.initialized():
        return []
    hydra = HydraConfig.get()
    chosen = [f"{group}={hydra.runtime.choices[group]}" for group in SUMMARY_GROUPS if hydra.runtime.choices.get(group)]
    lines = [f"Config: {' '.join(chosen)} (in full: {CONFIG_TREE_FILE} in the run folder)"]
    if hydra.overrides.task:
        lines.append(f"Overrides: {shlex.join(hydra.overrides.task)}")
    return lines


def config_tree(cfg: DictConfig) -> "rich.tree.Tree":
    """The composed config as a Rich tree, main sections first."""
    import rich.syntax
    import rich.tree

    first = ("data", "model", "optimizer", "scheduler", "regularizer", "callbacks", "logger", "trainer")
    tree = rich.tree.Tree("CONFIG", style="bold", guide_style="dim")
    for key in [k for k in first if k in cfg] + [k for k in cfg if k not in first]:
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=False) if isinstance(value, DictConfig) else str(value)
        tree.add(str(key), style="bold", guide_style="dim").add(rich.syntax.Syntax(text, "yaml", theme="ansi_dark"))
    return tree


def print_config_tree(cfg: DictConfig) -> None:
    from rich.console import Console

    Console().print(config_tree(cfg))


def save_config_tree(cfg: DictConfig, path: Path) -> None:
    """The config tree as plain text, whatever the console shows, so every run folder has it."""
    from rich.console import Console

    with open(path, "w") as file:
        Console(file=file, width=120).print(config_tree(cfg))
