"""The expansion of v4 (issue 25): a smooth curve under the network's gain, settings carried in the
weights, the same codes on every colour path, and the studio-made pairs it is judged and trained on."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from hdrvideo import colour
from hdrvideo.colour.bt2446 import C_CURVE, inverse_curve
from hdrvideo.model import EXPANSION_KEY, WeightsError, expansion_settings
from hdrvideo.pipeline import compiled as C
from hdrvideo.pipeline.calibrate import CalibrationConfig, coloured_area_weight, curve_log_gain_planes, pixel_log_gain
from hdrvideo.pipeline.processor import FrameProcessor

needs_compiler = pytest.mark.skipif(
    C.compiler_missing(torch.device("cpu")) is not None, reason="no C++ compiler: the compiled path cannot run here"
)
SETTINGS = {"curve_ip": C_CURVE[0], "curve_c": C_CURVE[1], "blend_lo": 0.85, "blend_hi": 0.97, "luma_lo": 0.5, "luma_hi": 0.8}


def _with_settings(model, settings=SETTINGS):
    m = copy.deepcopy(model)
    m.metadata = {EXPANSION_KEY: json.dumps(settings)}
    return m


def test_expansion_settings_are_read_and_checked(tiny_model):
    assert expansion_settings(tiny_model) == {} and expansion_settings(None) == {}
    assert expansion_settings(_with_settings(tiny_model)) == SETTINGS
    for bad, why in ((["x"], "JSON object"), ({"knee": 1}, "unknown field"), ({"curve_ip": 1.5}, "must be in"),
                     ({"blend_lo": 0.99, "blend_hi": 0.9}, "below"), ({"area_lo": 0.5, "area_hi": 0.2}, "below"),
                     ({"area_hi": 1.5}, "must be in"), ("nan", "JSON object")):  # fmt: skip
        m = copy.deepcopy(tiny_model)
        m.metadata = {EXPANSION_KEY: bad if isinstance(bad, str) else json.dumps(bad)}
        with pytest.raises(WeightsError, match=why):
            expansion_settings(m)
    proc = FrameProcessor(_with_settings(tiny_model), "pq", strength=0.5)
    assert proc.cfg.curve_ip == C_CURVE[0] and proc.cfg.blend_lo == 0.85 and proc.cfg.curve_strength == 0.5


def test_the_curve_lifts_rolled_off_light_and_keeps_mid_tones():
    cfg = CalibrationConfig(curve_ip=C_CURVE[0], curve_c=C_CURVE[1])
    y = torch.tensor([0.05, 0.3, 0.58, 0.7, 0.9, 1.0])
    g = curve_log_gain_planes(y, y, y, cfg)  # grey pixels: luminance y
    assert torch.equal(g[:3], torch.zeros(3))  # below the inflection point: BT.2408 exactly
    assert bool((g[3:].diff() > 0).all()) and float(g[-1].exp()) == pytest.approx(cfg.curve_max and np.exp(cfg.curve_max))
    torch.testing.assert_close(torch.exp(g), inverse_curve(y, *C_CURVE) / y)
    # rolled-off highlights (largest channel 0.8–0.95, below the gate) are expanded by the curve alone
    rolled = torch.tensor([0.95, 0.93, 0.90]) ** 2.4  # linear light of a warm highlight the SDR rolled off
    gain = pixel_log_gain(None, tuple(rolled), None, cfg)
    assert float(gain.exp()) > 1.3
    # a saturated surface (a red robot) stays where the SDR has it: its luminance is low
    red = torch.tensor([1.0, 0.1, 0.1]) ** 2.4
    assert float(pixel_log_gain(None, tuple(red), None, cfg)) == 0.0
    assert CalibrationConfig().curve_max == 0 and curve_log_gain_planes(y, y, y, CalibrationConfig()) is None


def _sky_lamp_and_white() -> torch.Tensor:
    """(1, 3, 128, 256) SDR signal: a clear sky whose blue clipped (top left, as on the gain-map
    photo: R' 0.7, G' 0.85, B' 1), a clipped white sky (top right), a dark room with a small
    orange lamp (6 × 6 px) and a thin red LED strip (bottom)."""
    x = torch.full((1, 3, 128, 256), 0.2)
    x[:, :, :64, :128] = torch.tensor([0.7, 0.85, 1.0]).view(1, 3, 1, 1)
    x[:, :, :64, 128:] = 1.0
    x[:, :, 96:102, 40:46] = torch.tensor([1.0, 0.72, 0.3]).view(1, 3, 1, 1)
    x[:, :, 110:112, 100:220] = torch.tensor([1.0, 0.25, 0.2]).view(1, 3, 1, 1)
    return x


def test_the_area_rule_keeps_a_clear_sky_and_leaves_lamps_and_white_light(tiny_model, monkeypatch):
    """A large bright colour is a surface: the network's gain fades out there; a small coloured
    lamp, a thin LED strip and a large clipped *white* area keep all of it, and the curve is untouched."""
    x = _sky_lamp_and_white()
    assert coloured_area_weight(x, CalibrationConfig()) is None  # off unless a model's settings turn it on
    w = coloured_area_weight(x, CalibrationConfig(area_lo=0.2, area_hi=0.5))[0, 0]
    assert w.shape == x.shape[-2:] and float(w.min()) >= 0 and float(w.max()) <= 1
    assert float(w[:40, :90].max()) == 0.0  # inside the clear sky: no network light
    assert float(w[:40, 170:].min()) == 1.0  # a clipped white sky: all of it (ACES 2.0 gives it ×5)
    assert float(w[96:102, 40:46].min()) == 1.0 and float(w[110:112, 100:220].min()) == 1.0
    # the same at another size (the share is taken on a grid relative to the frame)
    big = torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")
    wb = coloured_area_weight(big, CalibrationConfig(area_lo=0.2, area_hi=0.5))[0, 0]
    assert float(wb[:160, :360].max()) == 0.0 and float(wb[384:408, 160:184].min()) == 1.0
    # through the processor (a network that asks for ×2 everywhere): the rule only ever takes the
    # network's light away, and only on the sky
    from hdrvideo.pipeline.network_gain import NetworkGain

    def doubling(self, net_in, lin_in):
        b, _, h, w = net_in.shape
        return net_in.new_full((b, 1, h, w), float(np.log(2))), net_in.new_tensor([0.0, 1.0]).expand(b, 2)

    monkeypatch.setattr(NetworkGain, "_raw_gain", doubling)
    lin = colour.bt1886_eotf(x)
    on = FrameProcessor(_with_settings(tiny_model, {**SETTINGS, "area_lo": 0.2, "area_hi": 0.5}), "pq")
    off = FrameProcessor(_with_settings(tiny_model), "pq")
    curve = FrameProcessor(None, "pq")
    curve.cfg = off.cfg
    g_on, g_off, g_curve = (p.log_gain(x, lin)[0][0, 0] for p in (on, off, curve))
    assert float((g_on - g_off).max()) <= 1e-6
    torch.testing.assert_close(g_on[:40, :90], g_curve[:40, :90])
    assert float((g_off - g_curve)[:40, :90].min()) > 0.3  # (without the rule the gate lets it light that sky)
    torch.testing.assert_close(g_on[64:, :], g_off[64:, :])
    torch.testing.assert_close(g_on[:40, 170:], g_off[:40, 170:])


def test_the_temporal_filter_never_puts_light_back_on_a_cleared_sky(tiny_model, monkeypatch):
    """With the temporal filter, the area rule still decides alone: the filter's highlight level,
    smoothed over frames whose network gain falls (×3 → ×2.2), shifts the gain up, and that
    shift must not land on the clear sky (it did when the rule ran before the filter)."""
    from hdrvideo.pipeline.network_gain import NetworkGain
    from hdrvideo.pipeline.temporal import TemporalFilter

    calls = []

    def falling(self, net_in, lin_in):
        b, _, h, w = net_in.shape
        calls.append(b)
        gain = float(np.log(3.0 if len(calls) == 1 else 2.2))
        return net_in.new_full((b, 1, h, w), gain), net_in.new_tensor([0.0, 1.0]).expand(b, 2)

    monkeypatch.setattr(NetworkGain, "_raw_gain", falling)
    x = _sky_lamp_and_white()
    settings = {**SETTINGS, "area_lo": 0.2, "area_hi": 0.5}
    proc = FrameProcessor(_with_settings(tiny_model, settings), "pq", temporal=TemporalFilter())
    curve = FrameProcessor(None, "pq")
    curve.cfg = proc.cfg
    lin = colour.bt1886_eotf(x)
    g_curve = curve.log_gain(x, lin)[0][0, 0]
    first = proc.log_gain(x, lin)[0][0, 0]
    later = proc.log_gain(x, lin)[0][0, 0]  # the same picture: no cut, the level kept
    assert float(later[:40, 170:].mean()) > float(np.log(2.2)) + 0.2  # (the filter did hold the level up)
    for g in (first, later):
        torch.testing.assert_close(g[:40, :90], g_curve[:40, :90])


def _frames() -> np.ndarray:
    yy, xx = np.mgrid[:96, :160]
    f = np.stack([xx * 1.6, yy * 2.6, 255 - xx * 1.5], -1).clip(0, 255).astype(np.uint8)
    f[20:50, 30:90] = 255  # clipped light
    f[60:80, 100:150] = (250, 180, 60)  # a coloured, rolled-off light
    f[10:20, 120:150] = (255, 30, 30)  # a saturated surface
    return np.stack([f, f[:, ::-1]])


@needs_compiler
@pytest.mark.parametrize("gpu_form", [False, True])
@pytest.mark.parametrize("with_model", [False, True])
def test_compiled_paths_give_the_eager_codes_with_the_curve(tiny_model, monkeypatch, gpu_form, with_model):
    """The curve is computed in each colour path (eager, per-pixel fused, CPU quads) by one
    function; the codes agree as without it (one code on ≤ 0.1 %)."""
    from hdrvideo.pipeline import colour_stage

    if gpu_form:
        monkeypatch.setattr(colour_stage, "tables_for", lambda device: None)  # the per-pixel form of GPUs
    frames = _frames()
    # (the area rule at low shares, so that it acts on the coloured light of these frames)
    model = _with_settings(tiny_model, {**SETTINGS, "area_lo": 0.02, "area_hi": 0.1}) if with_model else None

    def proc(**kw):
        p = FrameProcessor(model, "pq", net_long_side=80, **kw)
        if model is None:  # the curve alone
            p.cfg = CalibrationConfig(peak_nits=1000.0, curve_ip=C_CURVE[0], curve_c=C_CURVE[1])
        return p

    eager = proc().process(frames)
    compiled = proc(compile=True)
    fused = compiled.process(frames)
    assert compiled.notes == [] and compiled._fused_light.usable
    dy = np.abs(eager.y.astype(int) - fused.y.astype(int))
    duv = np.abs(eager.uv.astype(int) - fused.uv.astype(int))
    assert dy.max() <= 1 and duv.max() <= 1 and (dy > 0).mean() <= 1e-3 and (duv > 0).mean() <= 1e-3
    np.testing.assert_allclose(fused.max_cll, eager.max_cll, rtol=1e-3)
    plain = FrameProcessor(None, "pq").process(frames)
    assert eager.max_cll[0] > 1.5 * plain.max_cll[0]  # the curve did act


def test_strength_zero_is_bt2408_with_the_curve(tiny_model):
    frames = _frames()
    zero = FrameProcessor(_with_settings(tiny_model), "pq", strength=0.0).process(frames)
    plain = FrameProcessor(None, "pq").process(frames)
    assert np.array_equal(zero.y, plain.y) and np.array_equal(zero.uv, plain.uv)


# -- studio-made pairs -------------------------------------------------------------------------

ocio = pytest.importorskip("PyOpenColorIO", reason="OpenColorIO is not installed: no ACES pairs")


def _scene_folder(tmp_path):
    """Two small scenes (Radiance .hdr) whose names fall in the test and the train split."""
    import cv2

    from hdrvideo.training.aces import scene_split

    names = {}
    i = 0
    while len(names) < 2:
        n = f"scene{i}.hdr"
        names.setdefault(scene_split(n), n) if scene_split(n) in ("test", "train") else None
        i += 1
    yy, xx = np.mgrid[:48, :64].astype(np.float32)
    scene = np.stack([xx / 64, yy / 48, np.full_like(xx, 0.3)], -1) * 0.5
    scene[8:16, 8:40] = (40.0, 30.0, 10.0)  # a lamp, 6 stops over
    scene[30:32, 4:60] = (60.0, 5.0, 5.0)  # a red LED strip, 2 px thin
    for n in names.values():
        cv2.imwrite(str(tmp_path / n), scene[:, :, ::-1].copy())
    return names


def test_aces_pairs_are_made_as_studios_make_them(tmp_path):
    from hdrvideo.training.aces import AcesRenderer, expose
    from hdrvideo.training.graded import aces_pairs

    names = _scene_folder(tmp_path)
    r = AcesRenderer("1000")
    grey = expose(np.full((4, 4, 3), 3.0, np.float32))
    assert float(np.median(grey)) == pytest.approx(0.18, rel=1e-5)
    ramp = np.geomspace(1e-3, 1e3, 64, dtype=np.float32)[None, :, None].repeat(3, 2)
    sdr, hdr = r.sdr_signal(ramp)[0, :, 1].astype(int), r.hdr_nits(ramp)[0, :, 1]
    assert (np.diff(sdr) >= 0).all() and sdr[-1] == 255  # SDR: monotone, white at the top
    assert (np.diff(hdr) >= -1e-3).all() and 900 < hdr.max() <= 1000.5  # HDR: rolled off to 1,000 cd/m²
    assert hdr[sdr >= 250].min() > 2 * colour.SDR_WHITE_NITS  # where the SDR clips, the HDR keeps going
    pairs = aces_pairs([tmp_path], max_side=64, split="test", stops=(0.0, 1.0))
    assert [p.source for p in pairs] == [names["test"], names["test"] + "@+1"]
    assert pairs[0].set == "ACES 2.0 pairs" and pairs[0].sdr.shape == pairs[0].ref.shape == (1, 3, 48, 64)
    assert (pairs[0].sdr * 255 - (pairs[0].sdr * 255).round()).abs().max() < 1e-4  # 8-bit steps


def test_eval_pairs_scores_studio_pairs_beside_the_formulas(tmp_path):
    from click.testing import CliRunner

    from hdrvideo.cli import main

    _scene_folder(tmp_path)
    r = CliRunner().invoke(main, ["eval", "--pairs", "--data", str(tmp_path), "--sets", "aces", "--max-side", "64",
                                  "--aces-stops", "0,1", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert list(res)[:3] == ["BT.2408 alone (no expansion)", "BT.2446-1 Method A inverse", "BT.2446-1 Method C inverse"]
    base, formula, shipped = res["BT.2408 alone (no expansion)"], res["BT.2446-1 Method C inverse"], list(res.values())[3]
    assert base["pairs"] == 2 and set(base["per_set"]) == {"ACES 2.0 pairs"}
    # on this scene the lamp and the LED strip are what an SDR grade clips: expansion must help there
    assert formula["overall"]["pu21_clipped"] > base["overall"]["pu21_clipped"]
    assert shipped["overall"]["pu21_clipped"] > base["overall"]["pu21_clipped"]
    bad = CliRunner().invoke(main, ["eval", "--pairs", "--data", str(tmp_path), "--sets", "aces,films"])
    assert bad.exit_code != 0 and "--sets" in bad.output


def test_packed_pairs_train_the_network_on_what_the_curve_leaves(tmp_path, tiny_weights):
    from hdrvideo.training.aces import pack_pairs
    from hdrvideo.training.data import load_pair_files
    from hdrvideo.training.train import TrainConfig, train

    _scene_folder(tmp_path)
    out = tmp_path / "pairs.pt"
    assert pack_pairs([tmp_path], out, max_side=64, stops=(0.0, -1.0), split="train") == 2
    pairs = load_pair_files([out])
    assert len(pairs) == 2 and pairs[0].sdr.shape == pairs[0].hdr.shape == (1, 3, 48, 64)
    assert float(pairs[0].hdr.float().amax()) > 2.0  # the lamp, above SDR white (relative light)
    cfg = TrainConfig(data=[], out=str(tmp_path / "run"), steps=3, batch_size=2, crop=32, val_every=100,
                      ckpt_every=100, pair_files=[str(out)], curve=C_CURVE, init=str(tiny_weights), device="cpu")  # fmt: skip
    summary = train(cfg, log=lambda *_: None)
    assert summary["steps"] == 3 and (tmp_path / "run" / "model.safetensors").is_file()
    with pytest.raises(Exception, match="pairs file"):
        load_pair_files([tiny_weights])
