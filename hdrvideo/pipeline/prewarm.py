"""Compiling ahead, in a process of its own, for a live stream that cannot wait for the compiler.

``stream`` must show its first frame at once, but compiling every graph a frame size needs
(:meth:`~hdrvideo.pipeline.processor.FrameProcessor.warm_up`) takes 35 s at 720p on 2 CPU cores
with a cold kernel cache, and still 7 s to load them from a warm one. Compiling in a thread
beside the live loop does not work: TorchDynamo holds the interpreter lock for seconds at a time
(eager frames took 3–17 s each while it ran). So a stream whose kernels are not in the cache
yet runs the eager code, which gives the same frames to within a 10-bit code and costs about
1.4× the time per frame (720p, 2 cores: 139 ms eager, 99 ms compiled), and starts this module
as a low-priority child process that compiles the same graphs into the on-disk cache and then
writes a marker (:func:`~hdrvideo.pipeline.compiled.warm_marker`). The next stream with the same
model, settings and frame size finds the marker and runs compiled.

Run as ``python -m hdrvideo.pipeline.prewarm '{json}'`` (what :func:`start` does).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from .compiled import warm_marker
from .settings import ConversionSettings

__all__ = ["settings_key", "is_warm", "start", "main"]

# what changes the compiled graphs (not the encoder's settings, nor how batches are sized)
_NOT_IN_KEY = {"codec", "crf", "preset", "encoder", "force", "batch_size", "compile"}


def settings_key(settings: ConversionSettings, width: int, height: int, keep_signal: bool) -> str:
    """A name for the graphs a processor built from ``settings`` compiles for ``width``×``height``
    frames: the settings that shape them, the weights file (path, size, time), torch's version."""
    import torch

    fields = {k: v for k, v in dataclasses.asdict(settings).items() if k not in _NOT_IN_KEY}
    weights = settings.weights and Path(settings.weights)
    stat = weights.stat() if weights and weights.is_file() else None
    ident = [fields, width, height, keep_signal, torch.__version__, stat and (stat.st_size, int(stat.st_mtime))]
    return f"{width}x{height}-" + hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


def is_warm(settings: ConversionSettings, width: int, height: int, keep_signal: bool) -> bool:
    """Whether a compile-ahead run finished for these settings and this frame size."""
    return warm_marker(settings_key(settings, width, height, keep_signal)).exists()


def start(settings: ConversionSettings, width: int, height: int, keep_signal: bool) -> subprocess.Popen:
    """Start compiling ahead in a child process at the lowest CPU priority (same process group:
    Ctrl-C stops it with the stream; after a normal end it finishes on its own)."""
    job = {"settings": dataclasses.asdict(settings), "width": width, "height": height, "keep_signal": keep_signal}

    def lowest_priority() -> None:
        os.nice(19)

    return subprocess.Popen(
        [sys.executable, "-m", "hdrvideo.pipeline.prewarm", json.dumps(job)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lowest_priority if hasattr(os, "nice") else None,
    )


def main(argv: list[str]) -> int:
    """Compile every graph of one frame size into the cache, then write its marker."""
    job = json.loads(argv[0])
    settings = ConversionSettings(**{**job["settings"], "compile": "on"})
    width, height, keep = job["width"], job["height"], job["keep_signal"]
    processor = settings.build_processor()
    processor.warm_up(height, width, keep_signal=keep)
    if any("failed" in n or "not compiled" in n for n in processor.notes):
        return 1
    marker = warm_marker(settings_key(settings, width, height, keep))
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(job))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
