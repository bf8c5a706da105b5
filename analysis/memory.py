"""Keep the memory a pass frees for the next pass (glibc's malloc).

A full-county pass builds a few GB of temporaries (arrays of the 28 M cached rows, the
hour x meter tables). glibc hands every block above its mmap threshold (at most 32 MB) to
the kernel on ``free`` and maps fresh zeroed pages for the next one, so each pass faults
in its whole working set again: at full county 150,000 page faults and 3-8 s of kernel
time per pass on two shared cores (``benchmarks/analyse_cpu.py``'s input: a repeated
``analyse()`` 11-12 s, 7.9-8.2 s with the memory kept). :func:`keep_freed_memory` turns
that off for the process: large blocks come from the heap and freed ones are reused. The
price: the process stays at its peak size between passes instead of shrinking to the
cache.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# mallopt(3) parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Ask the C library to keep freed memory for reuse; False where it cannot (not glibc).

    ``M_MMAP_MAX = 0``: no block is mapped on its own (blocks come from the heap, so a
    freed one can be reused); ``M_TRIM_THRESHOLD = -1``: the heap's free top is never
    returned to the kernel. Process-wide and for good: call it once, in a long-lived
    process.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        log.info("memory: no mallopt in the C library (%s), freed memory goes back", name)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, -1))
    if not done:
        log.warning("memory: mallopt refused, freed memory goes back to the kernel")
    return done
