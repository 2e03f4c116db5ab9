"""Compiling where it pays: TorchInductor for the colour stage and the network, never a failure.

:class:`Compiled` wraps a function or module with ``torch.compile`` (TorchInductor: C++ with
OpenMP on a CPU, Triton on a GPU). Its rules:

- **Paid once.** Shapes are static (one graph per frame size; the processor calls it frame by
  frame so a short last batch compiles nothing new), and compiled code is kept on disk, in
  ``$HDRVIDEO_CACHE`` or ``~/.cache/hdrvideo/inductor`` (``TORCHINDUCTOR_CACHE_DIR`` wins where
  set): the next run at the same size loads it in a second or two instead of compiling again.
- **Never a failure.** Where no compiler is (no C++ compiler on a CPU, no Triton on a GPU) or
  compiling fails for any reason, the wrapped code runs eagerly, with the same results, and the
  reason is noted once through ``note`` (``convert`` prints the processor's notes).

``--compile`` (:class:`~hdrvideo.pipeline.settings.ConversionSettings`) defaults to
``$HDRVIDEO_COMPILE`` (``auto``, ``on`` or ``off``); the test suite sets it to ``off`` and tests
the compiled path on its own (tests/test_compiled.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

__all__ = ["Compiled", "compiler_missing", "cache_dir", "warm_marker", "NETWORK_GPU_MODE"]

NETWORK_GPU_MODE = "max-autotune-no-cudagraphs"
"""How the network is compiled on a GPU: Inductor tries Triton templates against cuDNN for each
convolution and keeps the fastest (the choice is cached with the kernels). ``hdrvideo bench
--network`` on an H100 (docs/speed.md, 2026-11-26), 1080p, shipped model: 2.50 ms a frame in fp16
this way against 7.84 eager and 7.74 with CUDA graphs. CUDA graphs are left out: they did not pay
in that table, and they pin a buffer per frame size. The colour stage keeps the default mode."""


def cache_dir() -> Path:
    """Where compiled kernels are kept between runs."""
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    base = os.environ.get("HDRVIDEO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hdrvideo"
    )
    return Path(base) / "inductor"


def compiler_missing(device: torch.device) -> str | None:
    """Why nothing can be compiled for ``device`` here, or None when a compiler is present."""
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return "Triton is not installed"
        return None
    if device.type != "cpu":
        return f"no compiler for {device.type}"
    from .memory import cxx_compiler

    if cxx_compiler() is None:
        return "no C++ compiler (g++ or clang++) found"
    return None


class Compiled:
    """``fn`` (a function or an ``nn.Module``) compiled on first call, or eager where it cannot be.

    ``usable`` is False once compiling failed (or could not start); calls then run ``fn`` itself.
    """

    def __init__(self, fn: Callable, device: torch.device, note: Callable[[str], None] = lambda _: None) -> None:
        self.fn = fn
        self.device = torch.device(device)
        self.note = note
        self._compiled: Callable | None = None
        missing = compiler_missing(torch.device(device))
        self.usable = missing is None
        if missing:
            note(f"not compiled ({missing}): {_name(fn)} runs eagerly")

    hold = False
    """Class-wide: run every wrapped function eagerly for now (``stream`` on a cold kernel cache)."""

    def __call__(self, *args, **kwargs):
        if not self.usable or self.hold:
            return self.fn(*args, **kwargs)
        if self._compiled is None:
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir()))
            self._compiled = torch.compile(self.fn, dynamic=False, **self.compile_arguments())
        try:
            return self._compiled(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any compiler failure: the eager code gives the same result
            self.usable = False
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            self.note(f"compiling {_name(self.fn)} failed ({type(e).__name__}: {first}); it runs eagerly")
            return self.fn(*args, **kwargs)

    def compile_arguments(self) -> dict:
        """``torch.compile``'s mode or options for this function on this device: the network on a
        GPU in :data:`NETWORK_GPU_MODE`; the colour stage's functions index only tables, with
        indices clamped into range, so no bounds check per gather in the loop (8% of the fused
        stage; the network indexes nothing)."""
        if isinstance(self.fn, torch.nn.Module):
            return {"mode": NETWORK_GPU_MODE} if self.device.type == "cuda" else {}
        return {"options": {"assert_indirect_indexing": False}}


def _name(fn: Callable) -> str:
    """What a user calls it: "the network", else "the colour stage" (its functions note as one)."""
    return "the network" if isinstance(fn, torch.nn.Module) else "the colour stage"


def warm_marker(key: str) -> Path:
    """The file that says the kernels of ``key`` (a model, its settings and a frame size) are in
    the cache: written by :mod:`hdrvideo.pipeline.prewarm` once they all compiled."""
    return cache_dir() / "warm" / f"{key}.done"
