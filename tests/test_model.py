"""ExpandNet: parity with the authors' reference outputs, tiling, dtypes, weights I/O."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hdrvideo.model import ExpandNet, ExpandNetConfig, WeightsError, gain_scale, load_model, save_model
from tests.conftest import shared_path

AUTHORS_KEYS = {
    "local_net.0.0.weight": (64, 3, 3, 3),
    "local_net.1.0.weight": (128, 64, 3, 3),
    "mid_net.0.0.weight": (64, 3, 3, 3),
    "mid_net.1.0.weight": (64, 64, 3, 3),
    "mid_net.2.0.weight": (64, 64, 3, 3),
    "mid_net.3.weight": (64, 64, 3, 3),
    "glob_net.0.0.weight": (64, 3, 3, 3),
    "glob_net.5.0.weight": (64, 64, 3, 3),
    "glob_net.6.weight": (64, 64, 4, 4),
    "end_net.0.0.weight": (64, 256, 1, 1),
    "end_net.1.weight": (3, 64, 1, 1),
}


def test_state_dict_has_the_authors_names_and_shapes():
    sd = ExpandNet().state_dict()
    for k, shape in AUTHORS_KEYS.items():
        assert tuple(sd[k].shape) == shape, k
    assert sum(v.numel() for v in sd.values()) == 456_899


@pytest.mark.parametrize("name", ["synthetic", "beachball"])
def test_parity_with_authors_reference(name):
    weights = shared_path("reference/expandnet/weights.pth")
    ref = np.load(shared_path("reference/expandnet/reference.npz"))
    model = load_model(weights, device="cpu")
    with torch.no_grad():
        out = model(torch.from_numpy(ref[f"{name}_input"])).numpy()
    err = np.abs(out - ref[f"{name}_output"]).max()
    assert err < 1e-5, f"max abs error {err:.3g}"


def _random_model(seed: int = 0) -> ExpandNet:
    torch.manual_seed(seed)
    return ExpandNet().eval()


@pytest.mark.parametrize("size", [(37, 53), (130, 77), (1, 1)])
def test_any_frame_size_and_batch(size):
    model = _random_model()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = model(x)
        y0 = model(x[:1])
    assert y.shape == x.shape
    assert torch.all((y >= 0) & (y <= 1))
    torch.testing.assert_close(y[:1], y0, atol=1e-5, rtol=0)


def test_tiled_matches_full_frame():
    model = _random_model(1)
    x = torch.rand(1, 3, 150, 203)
    with torch.no_grad():
        full = model(x)
        tiled = model(x, tile=48, overlap=12)
    assert (full - tiled).abs().max().item() < 1e-3
    assert (full - tiled).abs().max().item() < 1e-5  # exact up to rounding with overlap ≥ 8


def test_tile_overlap_too_small_is_refused():
    with pytest.raises(ValueError, match="overlap"):
        _random_model()(torch.rand(1, 3, 64, 64), tile=16, overlap=4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_close_to_float32(dtype):
    model = _random_model(2)
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        ref = model(x)
        low = model.to(dtype)(x.to(dtype))
    assert low.dtype == dtype
    assert (low.float() - ref).abs().max().item() < 3e-2


def test_channels_last_gives_the_same_result():
    model = _random_model(3)
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        a = model(x)
        b = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_safetensors_round_trip_with_metadata(tmp_path):
    cfg = ExpandNetConfig(local_width=8, local_out=16, mid_width=8, glob_width=8, fuse_width=8)
    model = ExpandNet(cfg).eval()
    path = tmp_path / "m.safetensors"
    save_model(model, path, {"training_data": "unit test"})
    loaded = load_model(path, device="cpu")
    assert loaded.config == cfg
    assert loaded.metadata["training_data"] == "unit test"
    assert loaded.metadata["format"] == "hdrvideo-expandnet"
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), loaded(x))


def test_gain_scale_is_read_from_the_weights_and_checked(tmp_path):
    model = _random_model(4)
    assert gain_scale(model) == 1.0 and gain_scale(None) == 1.0  # no metadata: as trained
    path = tmp_path / "m.safetensors"
    save_model(model, path, {"gain_scale": 1.4})
    assert gain_scale(load_model(path, device="cpu")) == 1.4
    torch.save(model.state_dict(), tmp_path / "w.pth")
    assert gain_scale(load_model(tmp_path / "w.pth", device="cpu")) == 1.0  # the authors' format has none
    for bad in ("0", "-1", "5", "bold"):
        save_model(model, path, {"gain_scale": bad})
        with pytest.raises(WeightsError, match="gain_scale"):
            load_model(path, device="cpu")


def test_authors_pth_format_loads(tmp_path):
    model = _random_model(4)
    path = tmp_path / "weights.pth"
    torch.save(model.state_dict(), path)
    loaded = load_model(path, device="cpu")
    assert not loaded.training
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        torch.testing.assert_close(model(x), loaded(x))


def test_bad_weights_give_clear_errors(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        load_model(junk)
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(WeightsError, match="not ExpandNet"):
        load_model(other)


def test_default_weights_error_or_load(monkeypatch):
    import hdrvideo.model as m

    monkeypatch.setattr(m, "default_weights_path", lambda: None)
    with pytest.raises(WeightsError, match="no default weights"):
        m.load_model()


def test_shipped_default_weights_load_with_no_argument():
    from hdrvideo.model import default_weights_path, load_model

    path = default_weights_path()
    assert path is not None and path.parent.name == "hdrvideo-expandnet-v4"
    assert (path.parent / "MODEL_CARD.md").is_file()
    model = load_model(device="cpu")
    assert model.metadata["name"] == "hdrvideo-expandnet-v4"
    # the expansion it was chosen with (the curve under its gain, the light gate), and its gain scale
    from hdrvideo.model import expansion_settings, gain_scale

    assert expansion_settings(model)["curve_ip"] == 0.585 and gain_scale(model) == 0.7
    x = torch.rand(1, 3, 64, 96)
    y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_fast_mode_on_a_cpu_loads_the_distilled_model_and_says_so(monkeypatch, tiny_weights):
    """ConversionSettings: with no --weights, fast mode on a CPU loads CPU_FAST_MODEL_NAME where it
    is shipped (a note says so); --weights, another quality, or no such file: the usual model."""
    import hdrvideo.model as m
    from hdrvideo.pipeline.settings import ConversionSettings

    shipped = m.default_weights_path(m.CPU_FAST_MODEL_NAME)
    assert shipped is not None and (shipped.parent / "MODEL_CARD.md").is_file()
    distilled = m.load_model(shipped, device="cpu")
    assert distilled.config.local_width == distilled.config.mid_width == 16
    assert m.gain_scale(distilled) == m.gain_scale(m.load_model(device="cpu"))  # the same boldness
    assert m.expansion_settings(distilled) == m.expansion_settings(m.load_model(device="cpu"))  # and curve, gate
    proc = ConversionSettings(device="cpu", quality="fast", temporal=False, compile="off").build_processor()
    assert proc.model.config == distilled.config and any(m.CPU_FAST_MODEL_NAME in n for n in proc.notes)
    for settings in (ConversionSettings(device="cpu", quality="full", temporal=False, compile="off"),
                     ConversionSettings(device="cpu", quality="fast", weights=str(tiny_weights), compile="off")):  # fmt: skip
        proc = settings.build_processor()
        assert proc.model.config != distilled.config and not any("distilled" in n for n in proc.notes)
    real = m.default_weights_path
    monkeypatch.setattr(m, "default_weights_path", lambda name=m.DEFAULT_MODEL_NAME: None if name != m.DEFAULT_MODEL_NAME else real())
    proc = ConversionSettings(device="cpu", quality="fast", temporal=False, compile="off").build_processor()
    assert proc.model.config == m.load_model(device="cpu").config and proc.notes == []
