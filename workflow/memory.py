"""Keep long-lived server processes from holding on to memory they freed.

glibc serves a large allocation from a thread's heap once it has seen a block that
size freed, and keeps it there after the next free: a burst of requests that each
briefly used a few MiB (a password hash, a big JSON body) leaves every thread's
arena that much larger for good. Fixing the mmap threshold makes such blocks go
back to the system when freed. A no-op off glibc.
"""

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1024 * 1024


def return_large_blocks():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False
