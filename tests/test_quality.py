"""Picture quality: the saturated-colour chart, the SDR renderings, ICtCp/ΔE_ITP, the graded-pair metrics."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch

from hdrvideo import colour
from hdrvideo.colour.ictcp import delta_e_itp, rgb2020_to_ictcp
from hdrvideo.model import load_model
from hdrvideo.pipeline.processor import FrameProcessor
from hdrvideo.training.graded import frame_metrics, h264_roundtrip, make_pairs, score_pairs
from hdrvideo.training.grading import RENDERINGS, bt2446a, bt2446c, gamut_compress, hdr_grade, knee_curve, render_sdr
from tests.conftest import shared_path

# -- the saturated-colour chart -------------------------------------------------------------------

PATCH, GAP = 24, 12
LUMS = (0.05, 0.1, 0.2, 0.4, 0.6, 0.8)


def chart() -> tuple[torch.Tensor, list[tuple[float, float, slice, slice]], tuple[slice, slice]]:
    """A BT.709 SDR chart on mid grey: for 24 hues, the pure hue (max channel 1, the lowest
    luminance a clipped colour of that hue can have) and the luminances of LUMS above it, up to 80%
    of SDR white, each the patch of that hue whose strongest channel is exactly at clipping; plus
    one clipped white "lamp" with a glow.
    → signal (1, 3, H, W), [(hue, lum, rows, cols)], the lamp's (rows, cols)."""
    hues = np.arange(24) / 24
    h = (len(LUMS) + 1) * (PATCH + GAP) + GAP + 96
    w = len(hues) * (PATCH + GAP) + GAP
    lin = np.full((h, w, 3), 0.18, np.float32)
    patches = []
    for i, hue in enumerate(hues):
        pure = np.array(colorsys.hsv_to_rgb(hue, 1.0, 1.0)) ** 2.4  # linear, max channel 1
        lp = float(np.dot(colour.LUMA_BT709, pure))
        for j, lum in enumerate((lp, *LUMS)):
            if lum < lp or lum > 0.8:
                continue
            s = (1 - lum) / (1 - lp)  # white·(1 − s) + pure·s has luminance lum and max channel 1
            rgb = (1 - s) + s * pure
            r0, c0 = GAP + j * (PATCH + GAP), GAP + i * (PATCH + GAP)
            lin[r0 : r0 + PATCH, c0 : c0 + PATCH] = rgb
            patches.append((float(hue), lum, slice(r0 + 4, r0 + PATCH - 4), slice(c0 + 4, c0 + PATCH - 4)))
    # a lamp: a clipped white disc with a glow fading into the grey
    cy, cx = h - 48, w // 2
    yy, xx = np.mgrid[:h, :w]
    d = np.hypot(yy - cy, xx - cx)
    glow = np.clip(1.0 - (d - 14) / 30, 0, 1) ** 2
    lin = np.where((glow > 0)[..., None], np.maximum(lin, (0.18 + 0.9 * glow)[..., None]), lin)
    lin[d <= 14] = 1.0
    lamp = (slice(cy - 8, cy + 8), slice(cx - 8, cx + 8))
    sig = torch.from_numpy(np.clip(lin, 0, 1) ** (1 / 2.4)).permute(2, 0, 1)[None]
    sig = torch.round(sig * 255) / 255  # 8-bit, as decoded
    return sig, patches, lamp


def patch_light(proc: FrameProcessor, sig: torch.Tensor) -> torch.Tensor:
    rel, _ = proc.relative_hdr(sig.to(proc.device))
    return colour.luminance(rel, colour.LUMA_BT709)[0, 0].float().cpu()


def _chart_check(model) -> None:
    sig, patches, lamp = chart()
    hues = {p[0] for p in patches}
    assert len(patches) > 70 and len(hues) >= 20  # all but the yellows (pure yellow is at 93%)
    base = patch_light(FrameProcessor(None, "pq", 1000.0), sig)
    for quality in (None, 480 // 2):  # full resolution, and the network on a reduced frame
        out = patch_light(FrameProcessor(model, "pq", 1000.0, net_long_side=quality), sig)
        bad = []
        for hue, lum, rs, cs in patches:
            ratio = float(out[rs, cs].mean() / base[rs, cs].mean())
            if abs(ratio - 1) > 0.10:
                bad.append(f"hue {hue * 360:.0f}° at {lum:.0%} of white: ×{ratio:.2f}")
        assert not bad, "saturated colours turned into light: " + "; ".join(bad)


def test_chart_saturated_colours_stay_at_their_sdr_light_shipped_model():
    _chart_check(load_model(device="cpu"))


def test_chart_saturated_colours_stay_at_their_sdr_light_authors_weights():
    _chart_check(load_model(shared_path("reference/expandnet/weights.pth"), device="cpu"))


def test_chart_lamp_keeps_its_expansion_under_the_gate():
    """The gate that spares saturated colours leaves a clipped white light alone: the authors'
    weights raise the lamp above white exactly as much with the luma gate as without it."""
    import dataclasses

    model = load_model(shared_path("reference/expandnet/weights.pth"), device="cpu")
    sig, _, (rs, cs) = chart()
    base = patch_light(FrameProcessor(None, "pq", 1000.0), sig)[rs, cs].mean()
    gated = FrameProcessor(model, "pq", 1000.0)
    ungated = FrameProcessor(model, "pq", 1000.0)
    ungated.cfg = dataclasses.replace(ungated.cfg, luma_hi=0.0)
    a, b = patch_light(gated, sig)[rs, cs].mean() / base, patch_light(ungated, sig)[rs, cs].mean() / base
    assert float(a) > 1.2 and float(a) == pytest.approx(float(b), rel=1e-4)


def test_chart_would_fail_without_the_luma_gate():
    """The chart test can fail: with the gate on the largest channel alone (the old calibration),
    the authors' weights raise saturated patches far above their SDR light."""
    import dataclasses

    model = load_model(shared_path("reference/expandnet/weights.pth"), device="cpu")
    sig, patches, _ = chart()
    base = patch_light(FrameProcessor(None, "pq", 1000.0), sig)
    proc = FrameProcessor(model, "pq", 1000.0)
    proc.cfg = dataclasses.replace(proc.cfg, luma_hi=0.0)
    out = patch_light(proc, sig)
    worst = max(float(out[rs, cs].mean() / base[rs, cs].mean()) for _, _, rs, cs in patches)
    assert worst > 1.5


# -- renderings -----------------------------------------------------------------------------------


def _ramp() -> torch.Tensor:
    nits = torch.tensor([0.5, 5, 20, 50, 100, 203, 400, 1000, 4000.0])
    return nits.view(1, 1, 1, -1).expand(1, 3, 1, -1).contiguous()


@pytest.mark.parametrize("name", RENDERINGS)
def test_renderings_are_monotonic_and_in_range(name):
    s = render_sdr(_ramp(), name, peak_nits=4000.0)
    assert s.shape == (1, 3, 1, 9) and float(s.min()) >= 0 and float(s.max()) <= 1
    g = s[0, 1, 0]
    assert bool((g[1:] >= g[:-1] - 1e-6).all())
    assert float(g[-1]) > 0.98  # the peak reaches SDR white
    assert float(g[5]) > 0.45  # diffuse white stays well above mid grey (BT.2446 A at a 4,000 cd/m² peak: 0.49)


def test_bt2446a_reference_white_and_peak():
    # BT.2446-1 Method A: 1,000 cd/m² → SDR 1.0; 203 cd/m² (HDR reference white) lands near 69% of
    # SDR signal (the tone curve's published behaviour: Y'_SDR ≈ 0.69)
    s = bt2446a(_ramp(), 1000.0)[0, 1, 0]
    assert float(s[7]) == pytest.approx(1.0, abs=1e-3)
    assert float(s[5]) == pytest.approx(0.687, abs=0.01)


def test_bt2446c_linear_below_the_inflection_point():
    # Method C: Y_SDR = k1 · Y_HDR below Y_ip = 58.5 / k1 (grey in, grey out), SDR white 100 cd/m²
    s = bt2446c(_ramp(), alpha=0.0)[0, 1, 0]
    expect = colour.bt1886_inverse_eotf(torch.tensor(0.83802 * 50 / 100))
    assert float(s[3]) == pytest.approx(float(expect), abs=1e-4)


def test_saturated_rendering_clips_one_channel_at_mid_luminance():
    red = torch.tensor([110.0, 35.0, 15.0]).view(1, 3, 1, 1)  # a saturated red at 54 cd/m², a quarter of white
    s = render_sdr(red, "saturated", saturation=1.5)[0, :, 0, 0]
    assert float(s[0]) == pytest.approx(1.0) and float(s[1]) < 0.5
    assert float(render_sdr(red, "hue")[0, 0, 0, 0]) < 1.0  # without the boost it did not clip


def test_gamut_compression_keeps_in_gamut_and_brings_the_rest_in():
    rgb = torch.tensor([[0.5, 0.3, 0.2], [1.0, -0.1, 0.2], [0.2, 0.9, -0.3]]).T.reshape(1, 3, 1, 3)
    out = gamut_compress(rgb)
    assert torch.allclose(out[..., 0], rgb[..., 0], atol=1e-6)  # well inside: untouched
    assert float(out.min()) >= -1e-6
    assert torch.allclose(out.amax(1), rgb.amax(1))  # the achromatic level is kept


def test_knee_curve():
    x = torch.linspace(0, 6, 601)
    y = knee_curve(x, 0.75, 5.0)
    assert torch.equal(y[x <= 0.75], x[x <= 0.75])
    assert float(y[500]) == pytest.approx(1.0, abs=1e-5) and float(y.max()) <= 1.0
    assert bool((y[1:] >= y[:-1]).all())


def test_hdr_grade_puts_the_log_average_and_keeps_below_the_peak():
    scene = torch.rand(2, 3, 32, 32) ** 3 * torch.tensor([1.0, 50.0]).view(2, 1, 1, 1)
    scene[:, :, :2, :2] = 1e4  # a sun
    g = hdr_grade(scene, torch.tensor([1000.0, 4000.0]), key=0.18)
    y = colour.luminance(g, colour.LUMA_BT2020)
    assert float(y[0].max()) <= 1000.01 and float(y[1].max()) <= 4000.01 and float(y[1].max()) > 2000
    ratio = y / colour.luminance(colour.rgb_to_rgb(scene, colour.BT709_TO_BT2020), colour.LUMA_BT2020)
    for i in range(2):  # below the roll-off, each grade is its scene scaled by one factor
        r = ratio[i][y[i] < 100]
        assert float(r.std() / r.mean()) < 1e-4
    logavg = torch.exp(torch.log(y.clamp(min=1e-6)).flatten(1).mean(1))
    assert float(logavg[0]) == pytest.approx(0.18 * 203, rel=0.25)  # the sun pulls it a little


# -- ICtCp and ΔE_ITP against colour-science ------------------------------------------------------


def test_ictcp_and_delta_e_itp_match_colour_science():
    cs = pytest.importorskip("colour")
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 1500, (16, 3)), rng.uniform(0, 1500, (16, 3))

    def t(x):
        return torch.tensor(x.T.reshape(1, 3, 1, -1), dtype=torch.float64)

    ours = rgb2020_to_ictcp(t(a))[0, :, 0].T.numpy()
    assert np.abs(ours - cs.RGB_to_ICtCp(a)).max() < 1e-9
    de = delta_e_itp(t(a), t(b))[0, 0, 0].numpy()
    assert np.abs(de - cs.delta_E(cs.RGB_to_ICtCp(a), cs.RGB_to_ICtCp(b), method="ITP")).max() < 1e-6


# -- graded-pair metrics -------------------------------------------------------------------------


def test_frame_metrics_perfect_output_and_false_highlights():
    ref = torch.full((1, 3, 32, 32), 100.0)
    ref[..., :8, :8] = 800.0  # a real highlight
    sdr = colour.bt1886_inverse_eotf((ref / 203).clamp(max=1))
    perfect = frame_metrics(ref, ref, ref, sdr)
    assert perfect["pq_psnr"] > 90 and perfect["de_itp"] < 1e-6 and perfect["false_hl"] == 0
    assert perfect["headroom"] == pytest.approx(1.0)
    glow = ref.clone()
    glow[..., 16:, :] *= 2.0  # a quarter of the frame (all of it at 100 cd/m² in the grade) raised 2×
    m = frame_metrics(glow, ref, ref, sdr)
    assert m["false_hl"] == pytest.approx(100 * 16 * 32 / (32 * 32 - 64))
    assert m["pq_psnr"] < perfect["pq_psnr"]


def test_h264_roundtrip_keeps_the_picture():
    yy, xx = np.mgrid[:64, :96]
    rgb = np.stack([xx * 2 + 30, yy * 3 + 20, 200 - xx], axis=-1).astype(np.uint8)  # smooth ramps
    out = h264_roundtrip(rgb)
    assert out.shape == rgb.shape and np.abs(out.astype(int) - rgb.astype(int)).mean() < 3


def test_score_pairs_on_a_graded_reference():
    """End to end on one real graded frame: BT.2408 alone never makes false highlights, the tiny
    random network is scored without error, and every rendering is reported."""
    from hdrvideo.media.hdrio import read_hdr_video

    path = shared_path("data/hdr-video-graded/tears_of_steel_bridge_pq_6f.h265")
    frame = next(read_hdr_video(path, max_frames=1, primaries="bt2020"))
    ref = torch.nn.functional.interpolate(torch.from_numpy(frame).permute(2, 0, 1)[None], size=(80, 192), mode="area")
    pairs = make_pairs([("tos", ref)], crf=None)
    base = score_pairs(FrameProcessor(None, "pq", 1000.0), pairs)
    assert set(base.per_rendering) == set(RENDERINGS) and base.overall["false_hl"] == 0
    assert 10 < base.overall["pu21_psnr"] < 60


def test_eval_pairs_bad_input_is_one_line(tmp_path):
    from click.testing import CliRunner

    from hdrvideo.cli import main

    for args, message in (
        (["--data", str(tmp_path / "nowhere")], "not a folder"),
        (["--data", str(tmp_path), "--renderings", "nosuch"], "--renderings takes a comma list"),
        (["--data", str(tmp_path), "--strength", "1,x"], "--strength takes a comma list"),
        (["--data", str(tmp_path), "--strength", "4"], "--strength takes a comma list"),
        (["--data", str(tmp_path)], "no HDR references"),
    ):
        r = CliRunner().invoke(main, ["eval", "--pairs", *args])
        assert r.exit_code == 1 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_eval_pairs_cli_on_a_graded_clip(tmp_path):
    import json

    from click.testing import CliRunner

    from hdrvideo.cli import main

    clip = shared_path("data/hdr-video-graded/tears_of_steel_bridge_pq_6f.h265")
    (tmp_path / clip.name).symlink_to(clip)
    r = CliRunner().invoke(main, ["eval", "--pairs", "--data", str(tmp_path), "--frames-per-clip", "1", "--max-side",
                                  "128", "--renderings", "bt2446a,saturated", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    base = res["BT.2408 alone (no expansion)"]
    assert base["pairs"] == 2 and set(base["per_rendering"]) == {"bt2446a", "saturated"}
    assert base["overall"]["false_hl"] == 0
    # the baselines in every table (BT.2408 alone, BT.2446-1 Methods A and C inverse) and the shipped model
    assert list(res)[:3] == ["BT.2408 alone (no expansion)", "BT.2446-1 Method A inverse", "BT.2446-1 Method C inverse"]
    assert len(res) == 4 and set(base["per_set"]) == {"formula renderings"}


def test_eval_pairs_scores_each_strength_and_zero_is_bt2408(tmp_path):
    import json

    from click.testing import CliRunner

    from hdrvideo.cli import main

    clip = shared_path("data/hdr-video-graded/tears_of_steel_bridge_pq_6f.h265")
    (tmp_path / clip.name).symlink_to(clip)
    r = CliRunner().invoke(main, ["eval", "--pairs", "--data", str(tmp_path), "--frames-per-clip", "1", "--max-side",
                                  "128", "--renderings", "bt2446c", "--strength", "0,1.2", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    base = res.pop("BT.2408 alone (no expansion)")["overall"]
    (zero,) = [v["overall"] for k, v in res.items() if k.endswith("×0")]
    (bold,) = [v["overall"] for k, v in res.items() if k.endswith("×1.2")]
    assert zero == base  # strength 0 is BT.2408 alone, figure for figure
    assert bold["headroom"] > base["headroom"]  # and a strength above 0 adds light where it is bright
