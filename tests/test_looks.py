"""Looks (``--look``): the default keeps the SDR grade; ``aces`` places light as ACES 2.0's HDR
output transform does for the scene its SDR transform shows (checked against OpenColorIO)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from hdrvideo import colour
from hdrvideo.pipeline import compiled as C
from hdrvideo.pipeline.looks import ACES_FITS, LOOKS, aces_target_for, look_settings
from hdrvideo.pipeline.processor import FrameProcessor
from hdrvideo.pipeline.settings import ConversionSettings, SettingsError


def test_look_settings_pick_the_nearest_aces_transform_and_scale_with_strength():
    assert LOOKS[0] == "bt2408" and look_settings("bt2408", 1000.0) == {}
    ip, c, s = ACES_FITS[1000]
    assert look_settings("aces", 1000.0) == {"curve_ip": ip, "curve_c": c, "white_nits": 203.0 * s, "blend_lo": 0.90,
                                             "blend_hi": 0.98}  # fmt: skip
    # nearest in stops: the midpoints are 707, 1414 and 2828 cd/m²
    peaks = (101, 700, 720, 1400, 1430, 2800, 2900, 10000)
    assert [aces_target_for(p) for p in peaks] == [500, 500, 1000, 1000, 2000, 2000, 4000, 4000]
    assert look_settings("aces", 1000.0, strength=0.0)["white_nits"] == 203.0
    assert look_settings("aces", 1000.0, strength=2.0)["white_nits"] == pytest.approx(203.0 * s * s)
    with pytest.raises(ValueError, match="unknown look"):
        look_settings("filmic", 1000.0)
    # every fit darkens shadows (s < 1) and lifts SDR white well above BT.2408's 203 cd/m²
    for peak, (ip, c, s) in ACES_FITS.items():
        white = 203.0 * s * float(colour.bt2446.inverse_curve(torch.tensor(1.0), ip, c))
        assert s < 1 and 2 * 203 < white < peak, (peak, white)


def test_the_aces_look_at_strength_zero_is_bt2408_alone(tiny_model):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (2, 32, 48, 3), dtype=np.uint8)
    plain = FrameProcessor(None, "pq").process(frames)
    zero = FrameProcessor(tiny_model, "pq", strength=0.0, look="aces").process(frames)
    assert np.array_equal(zero.y, plain.y) and np.array_equal(zero.uv, plain.uv)
    lit = FrameProcessor(tiny_model, "pq", look="aces").process(frames)
    assert not np.array_equal(lit.y, plain.y)
    with pytest.raises(ValueError, match="unknown look"):
        FrameProcessor(None, "pq", look="vivid")
    with pytest.raises(ValueError, match="bt2408 look"):
        FrameProcessor(None, "pq", method="bt2446c", look="aces")


def test_images_and_evaluation_stay_relative_to_203_in_every_look():
    """relative_hdr is 1.0 = 203 cd/m² whatever the look: a mid-grey the aces look darkens reads
    darker, not the same number over a different white."""
    grey = torch.full((1, 3, 8, 8), 0.5)
    base, _ = FrameProcessor(None, "pq").relative_hdr(grey)
    aces, _ = FrameProcessor(None, "pq", look="aces").relative_hdr(grey)
    aces_raw, _ = FrameProcessor(None, "pq", look="aces").relative_hdr(grey, shoulder=False)
    lin = float(colour.bt1886_eotf(torch.tensor(0.5)))
    ip, c, s = ACES_FITS[1000]
    want = s * float(colour.bt2446.inverse_curve(torch.tensor(lin), ip, c))
    assert float(base.mean()) == pytest.approx(lin, rel=2e-3)
    assert float(aces.mean()) == pytest.approx(want, rel=2e-3) and float(aces_raw.mean()) == pytest.approx(want, rel=2e-3)


def test_look_is_a_conversion_setting_formulas_refuse():
    settings = ConversionSettings(look="aces", compile="off", device="cpu").validate()
    proc = settings.build_processor()
    assert proc.look == "aces" and proc.cfg.white_nits == pytest.approx(203.0 * ACES_FITS[1000][2])
    assert proc.cfg.curve_ip == ACES_FITS[1000][0]  # the look's curve in place of the model's
    assert (proc.cfg.blend_lo, proc.cfg.blend_hi, proc.cfg.luma_lo) == (0.90, 0.98, 0.5)  # its gate; v4's luma gate
    assert ConversionSettings(compile="off", device="cpu").validate().build_processor().cfg.white_nits == 203.0
    with pytest.raises(SettingsError, match="--look"):
        ConversionSettings(look="neon").validate()
    with pytest.raises(SettingsError, match="neither --weights, --strength nor --look"):
        ConversionSettings(method="bt2446a", look="aces").validate()


def test_convert_with_a_formula_and_a_look_is_one_line(tmp_path):
    from click.testing import CliRunner

    from hdrvideo.cli import main

    src = tmp_path / "in.mp4"
    src.write_bytes(b"not read: the settings are checked first")
    r = CliRunner().invoke(main, ["convert", str(src), str(tmp_path / "out.mkv"), "--method", "bt2446c", "--look", "aces"])
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "--look" in r.output, r.output
    assert not (tmp_path / "out.mkv").exists()


@pytest.mark.skipif(C.compiler_missing(torch.device("cpu")) is not None, reason="no C++ compiler: no compiled path")
def test_the_compiled_path_gives_the_eager_codes_in_the_aces_look(tiny_model, monkeypatch, tmp_path):
    """White at 136 cd/m² and the ACES curve through the quads path (tables): the eager codes
    within one code on ≤ 0.1 % of the samples."""
    monkeypatch.setenv("HDRVIDEO_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:96, :160]
    frames = np.stack([(xx * 255 // 159), (yy * 255 // 95), np.full_like(xx, 128)], -1)[None].repeat(2, 0)
    frames = (frames + rng.integers(-3, 4, frames.shape)).clip(0, 255).astype(np.uint8)
    frames[:, 20:40, 30:80] = 255  # clipped light: the network's gain on top of the curve
    eager = FrameProcessor(tiny_model, "pq", net_long_side=80, look="aces").process(frames)
    proc = FrameProcessor(tiny_model, "pq", net_long_side=80, look="aces", compile=True)
    fused = proc.process(frames)
    assert proc.notes == []
    dy = np.abs(eager.y.astype(int) - fused.y.astype(int))
    duv = np.abs(eager.uv.astype(int) - fused.uv.astype(int))
    assert dy.max() <= 1 and duv.max() <= 1 and (dy > 0).mean() <= 1e-3 and (duv > 0).mean() <= 1e-3
    np.testing.assert_allclose(fused.max_cll, eager.max_cll, rtol=1e-3)


# -- against OpenColorIO's ACES 2.0 transforms ----------------------------------------------------

ocio = pytest.importorskip("PyOpenColorIO", reason="OpenColorIO is not installed: no ACES transforms to check against")


def _scene() -> np.ndarray:
    """Scene light (64, 256, 3), BT.709: a grey ramp over 14 stops, and rows of colours over the
    same ramp (skin, foliage, sky, a warm lamp), median 0.18."""
    from hdrvideo.training.aces import expose

    ramp = np.geomspace(2**-8, 2**6, 256, dtype=np.float32)
    tints = np.array([(1, 1, 1), (1.0, 0.75, 0.6), (0.45, 0.7, 0.35), (0.55, 0.7, 1.0), (1.0, 0.8, 0.5)], np.float32)
    rows = [ramp[None, :, None] * t[None, None, :] for t in tints for _ in range(13)][:64]
    return expose(np.concatenate(rows, 0))


@pytest.mark.parametrize("peak", [1000.0, 4000.0])
def test_the_aces_look_places_light_as_the_aces_hdr_transform_does(peak):
    """The SDR rendering through the aces look against the HDR rendering of the same scene: the
    luminance of every pixel the SDR did not clip within a log RMSE of 0.12 (measured 0.057 at
    1,000 cd/m², 0.097 at 4,000: the ramp spans more stops evenly than real scenes, whose fit is
    0.027 and 0.046), where BT.2408's placement is off by over 0.4 (0.53 and 0.75)."""
    from hdrvideo.training.aces import AcesRenderer

    r = AcesRenderer(str(int(peak)))
    scene = _scene()
    sdr = torch.from_numpy(r.sdr_signal(scene)).permute(2, 0, 1)[None].float() / 255
    ref = colour.luminance(torch.from_numpy(r.hdr_nits(scene)).permute(2, 0, 1)[None], colour.LUMA_BT2020)
    ok = (sdr.amax(1, keepdim=True) < 0.97) & (ref > 0.05)

    def err(look: str) -> float:
        out, _ = FrameProcessor(None, "pq", peak, look=look).display_light(sdr)
        y = colour.luminance(out, colour.LUMA_BT2020).clamp(min=1e-4)
        return float(((y.log() - ref.log())[ok] ** 2).mean().sqrt())

    aces, base = err("aces"), err("bt2408")
    assert aces < 0.12 and base > 0.4, (aces, base)


def test_eval_scores_each_model_in_each_look_beside_the_look_alone(tmp_path):
    import cv2
    from click.testing import CliRunner

    from hdrvideo.cli import main
    from hdrvideo.training.aces import scene_split

    name = next(f"s{i}.hdr" for i in range(1000) if scene_split(f"s{i}.hdr") == "test")
    cv2.imwrite(str(tmp_path / name), np.ascontiguousarray(_scene()[:, :, ::-1]) * 3)
    r = CliRunner().invoke(main, ["eval", "--pairs", "--data", str(tmp_path), "--sets", "aces", "--max-side", "64",
                                  "--look", "bt2408,aces", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    names = list(res)
    assert "the aces look alone (no network)" in names
    (default,) = [k for k in names if k.endswith(", bt2408 look")]
    (aces,) = [k for k in names if k.endswith(", aces look")]
    score = {k: res[k]["overall"]["pu21_psnr"] for k in names}
    # on an ACES pair the ACES look is far closer than the SDR grade kept, and than Method A's curve
    assert score[aces] > score[default] + 3 and score[aces] > score["BT.2446-1 Method A inverse"]
    assert math.isfinite(score["the aces look alone (no network)"])
    bad = CliRunner().invoke(main, ["eval", "--pairs", "--data", str(tmp_path), "--sets", "aces", "--look", "x"])
    assert bad.exit_code != 0 and "--look" in bad.output
