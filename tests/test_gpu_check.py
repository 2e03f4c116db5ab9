"""scripts/gpu_check.sh, the GPU measurements in one go: its plan (steps and time limits) without a GPU."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.sh"


def plan(*parts: str) -> dict[str, int]:
    """The steps ``gpu_check.sh OUT PARTS`` would run → their time limits in seconds."""
    out = subprocess.run(["bash", str(SCRIPT), "unused-outdir", *parts], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "GPU_CHECK_PLAN": "1"}, check=True)  # fmt: skip
    assert out.stderr == ""
    steps = dict(line.rsplit(" ", 1) for line in out.stdout.splitlines())
    return {name: int(limit) for name, limit in steps.items()}


def test_the_short_set_fits_one_device_call_and_measures_what_issue_28_asks():
    """A lent GPU has 15 minutes in all and 10 a command: ``short`` must fit one command with
    room for the machine's start, and hold the figures the issue's targets are stated in."""
    steps = plan("short")
    assert sum(steps.values()) <= 570, steps
    assert list(steps)[:3] == ["info", "bench_auto", "bench_4k"]  # the processing rates first
    assert {"nvdec_4k", "convert_4k_jobs4"} <= set(steps)
    assert not (SCRIPT.parents[1] / "unused-outdir").exists()  # a plan writes nothing


def test_the_full_run_and_single_parts_plan_their_steps():
    steps = plan()
    assert {"info", "codecs", "nvdec_4k", "encoders_4k", "convert_4k_jobs1", "convert_4k_jobs8", "bench_off",
            "bench_auto", "bench_4k", "network", "stream_1080p", "train"} <= set(steps)  # fmt: skip
    assert "tests" not in steps  # only when asked
    assert plan("tests") == {"tests": 200}
    assert list(plan("convert4k")) == ["clip_4k", "convert_4k_jobs1", "convert_4k_jobs4", "convert_4k_jobs8"]
    assert all(0 < s <= 600 for s in steps.values())  # each within one device command
