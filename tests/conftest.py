"""Shared test helpers: the reference data folder beside the checkout, and small generated media."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HDRVIDEO_SHARED", REPO.parent / "shared"))

torch.set_num_threads(min(2, os.cpu_count() or 1))

# the suite runs the eager colour stage and network (compiling costs seconds per frame size);
# tests/test_compiled.py tests the compiled path against it
os.environ.setdefault("HDRVIDEO_COMPILE", "off")


def shared_path(rel: str) -> Path:
    """A file under ../shared, or skip the test with the reason."""
    p = SHARED / rel
    if not p.exists():
        pytest.skip(f"reference data not available: {p} (the ../shared folder is absent on this machine)")
    return p


@pytest.fixture
def tiny_model():
    """A narrow ExpandNet with fixed random weights: fast enough for end-to-end tests on a CPU."""
    from hdrvideo.model import ExpandNet, ExpandNetConfig

    torch.manual_seed(0)
    cfg = ExpandNetConfig(local_width=8, local_out=8, mid_width=8, glob_width=8, fuse_width=8)
    return ExpandNet(cfg).eval()


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """The tiny_model's architecture with fixed random weights, saved as .safetensors (for the CLI)."""
    from hdrvideo.model import ExpandNet, ExpandNetConfig, save_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_model(ExpandNet(ExpandNetConfig(8, 8, 8, 8, 8)), path)
    return path
