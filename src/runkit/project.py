"""The project's own packages: the researcher's, found beside runkit in the clone's src/, and runkit itself.

runkit never imports the researcher's code by name (`make rename` changes it); where it must tell the two apart
(code a checkpoint may name, errors the researcher's code raises), it asks here.
"""

import functools
from pathlib import Path

ENGINE = __name__.partition(".")[0]


@functools.cache
def researchers_packages() -> tuple[str, ...]:
    """The top-level packages beside runkit in the clone's src/ (trainlab, and any a researcher adds). An
    installed copy of runkit, in site-packages, has none: the packages beside it there are anybody's."""
    src = Path(__file__).resolve().parent.parent
    if src.name != "src":
        return ()
    found = (folder.name for folder in src.iterdir() if (folder / "__init__.py").is_file())
    return tuple(sorted(name for name in found if name != ENGINE))


def own_packages() -> tuple[str, ...]:
    """runkit and the researcher's packages."""
    return (ENGINE, *researchers_packages())


def in_packages(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in packages)
