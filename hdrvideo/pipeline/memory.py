"""Process-wide memory tuning for frame-sized tensors on the CPU, and what this CPU machine has
(native bf16, a C++ compiler for TorchInductor).

A 1080p frame batch in float32 is tens of megabytes per intermediate tensor. glibc's malloc serves
blocks above its mmap threshold (at most 32 MB by default, adapted at run time) with fresh
``mmap`` calls and returns them to the kernel on free, so every intermediate of every frame is
page-faulted in again: on the 2-core CI machine that was half of the colour stage's time (sys
time 187 ms of 192 ms per 1080p frame). Raising the mmap and trim thresholds keeps freed blocks
in the heap for reuse: the same work then takes 93 ms with 17 ms of sys time
(``python scripts/bench_colour.py --compare-malloc``). Now that the processor's colour stage runs
in bands of rows, the gain there is smaller (1.4×), but decode, the network's activations and
training still allocate frame-sized blocks. The cost is that the process keeps its peak heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["keep_freed_memory", "cpu_has_native_bf16", "cxx_compiler"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_DONE = False


def keep_freed_memory(threshold: int = 1 << 30) -> bool:
    """Ask glibc malloc to keep freed blocks up to ``threshold`` bytes for reuse (Linux/glibc only;
    elsewhere a no-op). Returns True when the setting took effect. Safe to call more than once."""
    global _DONE
    if _DONE:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, threshold))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    _DONE = ok
    return ok


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16; Linux /proc/cpuinfo).
    Elsewhere oneDNN emulates bfloat16, which is slower than float32."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    return False


def cxx_compiler() -> str | None:
    """The C++ compiler TorchInductor would use on a CPU (``$CXX``, else g++, c++ or clang++ on the
    PATH), or None. Without importing torch: the CLI asks before torch loads."""
    import shutil

    cxx = os.environ.get("CXX")
    return next((c for c in ([cxx] if cxx else []) + ["g++", "c++", "clang++"] if shutil.which(c)), None)
