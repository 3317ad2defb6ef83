"""Rename the template's package everywhere: `make rename NAME=mypkg` (or `python scripts/rename.py mypkg`).

The current name is the package folder under src/ (trainlab in a fresh clone). Every text file of the
repository is rewritten, spelling by spelling: `trainlab` -> `mypkg` (imports, config `_target_`s,
console scripts `trainlab-*`, pyproject, README, tests, Makefile), `Trainlab` -> `Mypkg` (class
names) and `TRAINLAB` -> `MYPKG` (environment variables); then files and folders with the name in
theirs are renamed. Run outputs, data, the virtual environment and git's own files are left alone.
"""

import importlib.util
import keyword
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Not the project's source. At the top: run outputs, data and environments; anywhere: caches, build products.
SKIPPED_AT_ROOT = {".git", ".venv", "logs", "data", "outputs", "multirun", "lightning_logs", "build", "dist"}
SKIPPED_ANYWHERE = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", "node_modules"}


class RenameError(Exception):
    """A name that cannot be used; the message says why and what to do."""


# trainlab's run machinery: a package of its own beside the researcher's, never renamed.
ENGINE = "runkit"


def current_name(root: Path) -> str:
    """The researcher's package folder under src/: the one with an __init__.py that is not the engine's."""
    packages = [p.name for p in sorted((root / "src").iterdir()) if (p / "__init__.py").is_file() and p.name != ENGINE]
    if len(packages) != 1:
        raise RenameError(f"expected one package folder under {root / 'src'}, found {packages or 'none'}.")
    return packages[0]


def check_new_name(name: str, old: str, root: Path) -> None:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise RenameError(
            f"NAME={name!r} is not a valid Python identifier; use letters, digits and underscores, e.g. my_project."
        )
    if name != name.lower():
        raise RenameError(
            f"NAME={name!r} has capital letters; Python package names are lower case, e.g. {name.lower()}."
        )
    if name == old:
        raise RenameError(f"NAME={name!r} is already the package's name; choose a new one.")
    if (root / "src" / name).exists():
        raise RenameError(f"NAME={name!r} already exists as {root / 'src' / name}; choose another name.")
    if module_exists(name):
        raise RenameError(f"NAME={name!r} is already an installed Python module; choose a name that is free.")


def module_exists(name: str) -> bool:
    """Is `name` importable here (standard library or installed), not counting this scripts/ folder?"""
    here = str(Path(__file__).resolve().parent)
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(here)]
    try:
        return name in sys.builtin_module_names or importlib.util.find_spec(name) is not None
    finally:
        sys.path[:] = saved


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def spellings(old: str, new: str) -> list[tuple[str, str]]:
    """Each spelling of the old name and its replacement, longest first so none rewrites part of another."""
    pairs = {old: new, old.upper(): new.upper(), camel(old): camel(new), old.capitalize(): camel(new)}
    return sorted(pairs.items(), key=lambda pair: -len(pair[0]))


def skipped(folder: Path, root: Path) -> bool:
    if folder.name in SKIPPED_ANYWHERE or folder.name.endswith(".egg-info"):
        return True
    if (folder / "pyvenv.cfg").is_file():  # any venv: .venv-extras, benchmarks/minimal-venv
        return True
    return folder.parent == root and folder.name in SKIPPED_AT_ROOT


def project_folders(root: Path) -> list[Path]:
    """Every folder of the project's own files, parents before children."""
    folders = []
    for folder, subfolders, _ in os.walk(root):
        subfolders[:] = [name for name in subfolders if not skipped(Path(folder) / name, root)]
        folders.append(Path(folder))
    return folders


def project_files(root: Path) -> list[Path]:
    return [path for folder in project_folders(root) for path in folder.iterdir() if path.is_file()]


def rewrite_text(path: Path, pairs: list[tuple[str, str]]) -> bool:
    """Replace every spelling in a text file; binary files are left as they are."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return False
    renamed = text
    for old, new in pairs:
        renamed = renamed.replace(old, new)
    if renamed == text:
        return False
    path.write_text(renamed, encoding="utf-8")
    return True


def rename_paths(root: Path, pairs: list[tuple[str, str]]) -> None:
    """Rename files and folders whose names hold the old name, deepest first so parents move last."""
    for folder in reversed(project_folders(root)):
        for path in sorted(folder.iterdir()):
            if path.is_dir() and skipped(path, root):
                continue
            new_name = path.name
            for old, new in pairs:
                new_name = new_name.replace(old, new)
            if new_name != path.name:
                path.rename(path.with_name(new_name))


def rename(new: str, root: Path = ROOT) -> list[Path]:
    """Rename the package to `new` under root; return the files whose text changed."""
    old = current_name(root)
    check_new_name(new, old, root)
    pairs = spellings(old, new)
    changed = [path for path in project_files(root) if rewrite_text(path, pairs)]
    rename_paths(root, pairs)
    return changed


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0]:
        print("Error: give the new package name: make rename NAME=mypkg", file=sys.stderr)
        return 2
    new = argv[0]
    try:
        old = current_name(ROOT)
        changed = rename(new)
    except RenameError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    print(f"Renamed {old} -> {new} in {len(changed)} files, and src/{old} -> src/{new}.")
    print(f"Next: `.venv/bin/pip uninstall -y {old}` if it was installed, then `make install` and `make test`.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
