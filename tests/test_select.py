"""Choosing a run's weights: the moving average, the selection score, the graded validation split."""

from __future__ import annotations

import subprocess

import pytest
import torch

from hdrvideo.model import ExpandNet, ExpandNetConfig, load_model
from hdrvideo.training.graded import load_references
from hdrvideo.training.select import FALSE_HL_BUDGET, FALSE_HL_COST_DB, WeightAverage, interpolate, selection_score
from tests.conftest import shared_path
from tests.test_train import TINY, _env, _train_cmd, tiny_data  # noqa: F401 - tiny_data is a fixture

GRADED = "data/hdr-video-graded/tears_of_steel_bridge_pq_6f.h265"


def _tiny() -> ExpandNet:
    return ExpandNet(ExpandNetConfig(local_width=4, local_out=8, mid_width=4, glob_width=4, fuse_width=4, mid_depth=2))


def test_weight_average_is_an_exponential_moving_average_and_restores():
    model = _tiny()
    avg = WeightAverage(model, 0.75)
    avg.update()  # the first update takes the weights as they are (torch's AveragedModel)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    avg.update()
    for k, v in avg.module.state_dict().items():
        assert torch.allclose(v, 0.75 * start[k] + 0.25 * (start[k] + 1.0), atol=1e-6), k
    # a checkpoint's average comes back as it was; a checkpoint without one starts from the model
    other = WeightAverage(model, 0.75)
    other.load_state_dict(avg.state_dict())
    for k, v in other.module.state_dict().items():
        assert torch.equal(v, avg.module.state_dict()[k]), k
    fresh = WeightAverage(model, 0.75)
    fresh.load_state_dict(None)
    for k, v in fresh.module.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k
    off = WeightAverage(model, 0.0)
    assert off.module is model and off.state_dict() is None


def test_selection_score_weighs_light_against_false_highlights():
    timid = {"pu21_psnr": 22.6, "pu21_clipped": 16.5, "false_hl": 0.1}
    bold = {"pu21_psnr": 22.9, "pu21_clipped": 17.8, "false_hl": 1.0}
    assert selection_score(timid) == 22.6 + 0.5 * 16.5  # within the budget: no cost
    assert selection_score(bold) == 22.9 + 0.5 * 17.8 - FALSE_HL_COST_DB * (1.0 - FALSE_HL_BUDGET)
    # bold's 0.95 dB of light against 0.7 points of false highlights over the budget: timid wins
    assert selection_score(timid) > selection_score(bold)
    # within the budget the bolder model wins
    assert selection_score({**bold, "false_hl": FALSE_HL_BUDGET}) > selection_score(timid)
    assert selection_score({**timid, "pu21_clipped": float("nan")}) == 22.6


def test_interpolate_is_a_straight_line_between_two_models():
    a, b = _tiny(), _tiny()
    for alpha in (0.0, 0.3, 1.0):
        m = interpolate(a, b, alpha)
        for k, v in m.state_dict().items():
            want = a.state_dict()[k] + alpha * (b.state_dict()[k] - a.state_dict()[k])
            assert torch.allclose(v, want, atol=1e-6), (alpha, k)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(interpolate(a, b, 0.0).eval()(x), a.eval()(x))
    other = ExpandNet(ExpandNetConfig(local_width=8, local_out=8, mid_width=4, glob_width=4, fuse_width=4, mid_depth=2))
    with pytest.raises(ValueError, match="same architecture"):
        interpolate(a, other, 0.5)


def test_validation_frames_are_not_the_frames_eval_scores(tmp_path):
    clip = shared_path(GRADED)
    (tmp_path / clip.name).symlink_to(clip)
    for m in (1, 2, 3):
        scored = {n for n, _ in load_references([tmp_path], 64, m, log=lambda *_: None)}
        chosen = {n for n, _ in load_references([tmp_path], 64, m, log=lambda *_: None, validation=True)}
        assert chosen and scored and not scored & chosen, (m, scored, chosen)
        assert len(chosen) == m and f"{clip.name}#0" not in chosen and f"{clip.name}#5" not in chosen
    assert {n for n, _ in load_references([tmp_path], 64, 2)} == {f"{clip.name}#0", f"{clip.name}#5"}


def test_train_chooses_best_on_graded_pairs(tiny_data, tmp_path):  # noqa: F811 - pytest fixture
    clip = shared_path(GRADED)
    graded = tmp_path / "graded"
    graded.mkdir()
    (graded / clip.name).symlink_to(clip)
    out = tmp_path / "run"
    cmd = _train_cmd(tiny_data, out, 4, ["--val-every", "2", "--val-pairs", str(graded), "--ema", "0.5"])
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "graded validation: 6 pairs from 1 reference frames" in r.stderr
    header, *rows = (out / "log.csv").read_text().splitlines()
    cols = header.split(",")
    assert len(rows) == 2 and all(row.split(",")[cols.index("graded_score")] for row in rows)
    scores = [float(row.split(",")[cols.index("graded_score")]) for row in rows]
    from safetensors import safe_open

    with safe_open(str(out / "best.safetensors"), "pt") as f:
        meta = f.metadata()
    assert abs(float(meta["graded_score"]) - max(scores)) < 2e-3
    assert load_model(out / "best.safetensors", device="cpu").config.local_width == int(TINY.split(",")[0])
    # no video to validate on: one line, exit 1
    empty = tmp_path / "empty"
    empty.mkdir()
    r = subprocess.run(_train_cmd(tiny_data, tmp_path / "run2", 2, ["--val-pairs", str(empty)]), env=_env(),
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "no PQ/HLG video" in r.stderr, r.stderr
