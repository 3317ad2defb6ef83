"""Freed memory kept for the next training step, not handed back to the system and asked for again.

Every training step allocates and frees the same activation and gradient buffers (megabytes each for a
small CNN). With glibc's default settings, a process hands large freed blocks back to the system, then
asks for them again on the next step, and the system zero-fills every page of them each time: in a
fresh process training the MNIST recipe, 9 million page faults and epochs up to 1.9x as long, until
glibc's own thresholds have adapted (they do not always). Two documented glibc settings (`man 3 mallopt`)
keep those blocks in the process: M_MMAP_THRESHOLD (blocks smaller than it come from the heap, which is
reused) and M_TRIM_THRESHOLD (freed heap is handed back only above it). The process's peak memory stays
what it was; it only keeps its freed memory until it exits.

Elsewhere than on Linux with glibc (macOS, musl), and where the user set glibc's MALLOC_* variables or
preloads another allocator (jemalloc, tcmalloc), nothing is changed.
"""

import ctypes
import logging
import os
import platform

log = logging.getLogger(__name__)

# mallopt's parameter numbers, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_BYTES = 32 * 1024**2  # glibc's largest: blocks up to 32 MiB come from the reusable heap
TRIM_THRESHOLD_BYTES = 1024**3  # freed heap kept up to 1 GiB

USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "LD_PRELOAD")


def keep_freed_memory() -> bool:
    """Set glibc's thresholds (see the module's docstring); whether they were set."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(os.environ.get(name) for name in USER_SETTINGS):  # the user's own choice of allocator settings
        return False
    libc = ctypes.CDLL(None)  # the process's own symbols, glibc's among them (find_library would run ldconfig)
    done = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    if not done:  # mallopt returns 0 when it refuses a value
        log.debug("glibc refused the allocator thresholds; freed memory goes back to the system as by default.")
    return bool(done)
