"""A run keeps the memory it frees for its next step (process/memory.py), as glibc's mallopt promises.

The pattern below is a training step in miniature: blocks allocated, written and freed, again and again. glibc's
default hands the freed blocks back to the system each time, so every round's pages are faulted in again;
with trainlab's thresholds they stay in the process. Page faults are counted by the kernel, not timed.
"""

import os
import platform
import subprocess
import sys

import pytest

from runkit.process.memory import USER_SETTINGS, keep_freed_memory

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's"
)

ROUNDS_OF_ALLOCATIONS = """
import ctypes, resource, sys
from runkit.process.memory import keep_freed_memory

libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
if sys.argv[1] == "keep":
    assert keep_freed_memory()
BLOCK = 4 * 1024 * 1024


def written_block():
    block = libc.malloc(BLOCK)
    libc.memset(block, 1, BLOCK)
    return block


libc.free(written_block())  # glibc's default adapts its own threshold to this size
faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    blocks = [written_block() for _ in range(3)]
    for block in reversed(blocks):
        libc.free(block)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before)
"""


def page_faults(setting: str) -> int:
    """Page faults of ten rounds of allocations in a fresh process, glibc as by default or as trainlab sets it."""
    # Without the allocator settings of whoever runs the tests (which keep_freed_memory leaves alone, and which
    # would change glibc's default): glibc's own defaults on every machine.
    env = {key: value for key, value in os.environ.items() if key not in (*USER_SETTINGS, "GLIBC_TUNABLES")}
    done = subprocess.run(
        [sys.executable, "-c", ROUNDS_OF_ALLOCATIONS, setting], capture_output=True, text=True, check=True, env=env
    )
    return int(done.stdout)


@glibc_only
def test_freed_memory_is_reused_instead_of_faulted_in_again() -> None:
    by_default, kept = page_faults("default"), page_faults("keep")
    # By default each round faults in its 12 MiB again (about 3,000 pages a round); kept, only the first round does.
    assert kept * 4 < by_default, (kept, by_default)


@glibc_only
@pytest.mark.parametrize("variable", ["MALLOC_TRIM_THRESHOLD_", "LD_PRELOAD"])
def test_the_users_own_allocator_settings_are_left_alone(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "1048576" if variable.startswith("MALLOC") else "libjemalloc.so.2")
    assert keep_freed_memory() is False
