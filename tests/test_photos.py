"""HDR photos people can view (issue 16): Ultra HDR JPEG and AVIF out, read back by independent
decoders (libultrahdr; dav1d through PyAV), and gain-map JPEGs in."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import imagecodecs
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from hdrvideo import colour
from hdrvideo.cli import main
from hdrvideo.media.gainmap import _srgb_linear, read_gainmap_info, read_gainmap_pair, write_ultrahdr
from tests.conftest import shared_path


def _photo(path: Path) -> Path:
    """An 8-bit SDR photo with gradients, saturated colour and a clipped window, as a JPEG."""
    h, w = 192, 256
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([40 + 150 * xx / w, 30 + 160 * yy / h, 90 + 60 * np.sin(xx / 17)], -1)
    img[120:170, 20:90] = (230, 90, 20)  # saturated orange: its red channel near clipping, luma low
    img[30:90, 140:230] = 255  # a clipped window: light
    bgr = np.clip(img, 0, 255).astype(np.uint8)[:, :, ::-1]
    cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


def _our_ratio(src: Path, model) -> np.ndarray:
    """Our expansion of the photo as a luminance ratio HDR / SDR (with the format's offsets)."""
    from hdrvideo.commands.images import expand_image, read_sdr_image
    from hdrvideo.pipeline.processor import FrameProcessor

    hdr, sdr = expand_image(FrameProcessor(model), read_sdr_image(src), with_sdr=True)
    w = np.array([0.2126, 0.7152, 0.0722], np.float32)
    return (hdr @ w + 1 / 64) / (sdr @ w + 1 / 64)


_TINY: list = []


@pytest.fixture(autouse=True)
def _keep_tiny(tiny_model):
    _TINY[:] = [tiny_model]


@pytest.fixture(scope="module")
def shipped():
    """The shipped model in float32 (the tiny random model raises nothing)."""
    from hdrvideo.model import load_model

    return load_model(None, device="cpu", dtype=torch.float32)


def _convert(args: list[str], weights: Path | None = None):
    extra = ["--weights", str(weights), "--precision", "fp32"] if weights else []
    return CliRunner().invoke(main, ["convert", *args, *extra])


@pytest.fixture
def tiny_weights(tmp_path, tiny_model) -> Path:
    from hdrvideo.model import save_model

    path = tmp_path / "tiny.safetensors"
    save_model(tiny_model, path)
    return path


def test_ultrahdr_jpeg_round_trip_through_libultrahdr(tmp_path, shipped):
    """The written file, decoded by libultrahdr (not our code) at full and at no headroom, shows
    our expansion: the ratio of its HDR to its SDR rendition is ours to 0.02 stops (median) and
    0.1 stops (99th percentile; an 8-bit, JPEG-coded map). Its SDR base is the input JPEG, its
    image data byte for byte."""
    src = _photo(tmp_path / "photo.jpg")
    out = tmp_path / "photo_hdr.jpg"
    r = CliRunner().invoke(main, ["convert", str(src), str(out), "--quality", "full", "--precision", "fp32"])
    assert r.exit_code == 0, r.output
    data = out.read_bytes()
    hdr = imagecodecs.ultrahdr_decode(data)[..., :3].astype(np.float32)  # full headroom
    sdr = imagecodecs.ultrahdr_decode(data, boost=1.0)[..., :3].astype(np.float32)  # no headroom
    w = np.array([0.2126, 0.7152, 0.0722], np.float32)
    shown = np.log2((hdr @ w + 1 / 64) / (sdr @ w + 1 / 64))
    err = np.abs(shown - np.log2(_our_ratio(src, shipped)))  # stops
    assert np.median(err) <= 0.02 and np.percentile(err, 99) <= 0.1, (np.median(err), np.percentile(err, 99))
    assert shown[40:80, 150:220].mean() > 0.5  # the window is raised by more than half a stop
    # the base is the input's own picture: its entropy-coded data untouched
    base = imagecodecs.jpeg8_decode(src.read_bytes())
    assert np.array_equal(imagecodecs.jpeg8_decode(data), base)
    src_bytes = src.read_bytes()
    assert src_bytes[src_bytes.index(b"\xff\xda") :] in data
    # and hdrvideo info sees an HDR photo
    r = CliRunner().invoke(main, ["info", "--json", str(out)])
    d = json.loads(r.output)
    assert d["hdr"].startswith("Ultra HDR") and d["gain_map"]["map_size"] == [256, 192]
    assert d["gain_map"]["headroom"] > 1.5


def test_ultrahdr_from_a_png_encodes_the_base(tmp_path):
    rgb = np.zeros((64, 96, 3), np.uint8)
    rgb[:] = (60, 120, 180)
    rgb[10:30, 10:40] = 255
    lin = _srgb_linear(rgb)
    hdr = lin.copy()
    hdr[10:30, 10:40] *= 3.0
    info = write_ultrahdr(tmp_path / "a.jpg", rgb, lin, hdr)
    assert info.map_size == (96, 64) and abs(info.headroom - 3.0) < 0.1
    sdr, back = read_gainmap_pair(tmp_path / "a.jpg")
    diff = np.abs(sdr.astype(int) - rgb.astype(int))
    assert diff.mean() <= 1 and diff.max() <= 16  # quality 95, 4:4:4 (the most at the box's edges)
    assert abs(float(back[14:26, 14:36].mean()) - 3.0 * float(lin[14:26, 14:36].mean())) < 0.1
    assert read_gainmap_info(tmp_path / "a.jpg").map_size == (96, 64)


def test_a_cmyk_jpeg_becomes_an_ultra_hdr_jpeg_readers_open(tmp_path, tiny_weights):
    """Issue 27, finding 2: the CMYK JPEG's own bytes became the base, which libultrahdr refuses
    ("encoded with 1 component (grayscale) or 3 components"); the base is now encoded from RGB."""
    from hdrvideo.media.gainmap import jpeg_components

    cmyk = np.zeros((48, 64, 4), np.uint8)
    cmyk[..., 0], cmyk[..., 3] = 40, 10
    cmyk[8:24, 8:32] = 0  # no ink: white paper, the highlight
    src = tmp_path / "cmyk.jpg"
    src.write_bytes(imagecodecs.jpeg8_encode(cmyk, colorspace="CMYK", outcolorspace="CMYK"))
    assert jpeg_components(src.read_bytes()) == 4
    r = CliRunner().invoke(main, ["convert", str(src), str(tmp_path / "u.jpg"), "--weights", str(tiny_weights), "-q"])
    assert r.exit_code == 0, r.output
    data = (tmp_path / "u.jpg").read_bytes()
    assert jpeg_components(data) == 3
    decoded = imagecodecs.ultrahdr_decode(data)  # the independent reader opens it
    assert decoded.shape[:2] == (48, 64)


@pytest.mark.parametrize("transfer", ["pq", "hlg"])
def test_avif_round_trip_through_dav1d(tmp_path, tiny_weights, transfer):
    """The AVIF decoded by dav1d (through PyAV, not libavif) and our own BT.2020 matrix gives
    back our display light to within 1% (PQ: 10-bit codes, AV1 at quality 90), with its
    colour description; hdrvideo info calls it HDR."""
    from hdrvideo.colour.ycbcr import ycbcr_to_rgb
    from hdrvideo.commands.images import expand_image, read_sdr_image
    from hdrvideo.media.avif import avif_codes
    from hdrvideo.pipeline.processor import FrameProcessor

    src = _photo(tmp_path / "photo.jpg")
    out = tmp_path / "photo.avif"
    r = _convert([str(src), str(out), "--quality", "full", "--transfer", transfer, "--peak-nits", "1000"], tiny_weights)
    assert r.exit_code == 0, r.output
    with av.open(str(out)) as c:
        (frame,) = list(c.decode(video=0))
        assert frame.format.name == "yuv444p10le"
        assert (int(frame.color_primaries), int(frame.color_trc), int(frame.colorspace)) == (9, 16 if transfer == "pq" else 18, 9)
        planes = np.stack([np.frombuffer(p, np.uint16).reshape(frame.height, -1)[:, : frame.width] for p in frame.planes])
    from hdrvideo.colour.ycbcr import dequantize

    ycc = dequantize(torch.from_numpy(planes.astype(np.float32))[None], 10, limited=int(frame.color_range) != 2)
    rgb = ycbcr_to_rgb(ycc, "bt2020")[0].clamp(0, 1).permute(1, 2, 0).numpy()
    processor = FrameProcessor(_TINY[0], transfer, 1000.0)
    hdr = expand_image(processor, read_sdr_image(src))
    nits = colour.rgb_to_rgb(torch.from_numpy(hdr).permute(2, 0, 1)[None] * 203.0, colour.BT709_TO_BT2020)
    expected = avif_codes(nits.clamp(0, 1000)[0].permute(1, 2, 0).numpy(), transfer, 1000.0) / 1023
    err = np.abs(rgb - expected)
    assert np.median(err) <= 1.5 / 1023 and np.percentile(err, 99) <= 0.01, (np.median(err) * 1023, np.percentile(err, 99))
    d = json.loads(CliRunner().invoke(main, ["info", "--json", str(out)]).output)
    assert d["hdr"] == ("HDR10 (PQ)" if transfer == "pq" else "HLG")


def test_hdr_stills_as_input_are_already_hdr(tmp_path, tiny_weights):
    """Issue 27, finding 4: the tool's own PQ AVIF given back to convert wrote an all-black EXR
    with exit 0, a PQ AVIF of another encoder was "not a readable image", an HLG PNG was expanded
    as SDR. Now: "already HDR" in one line, exit 1; with --force they are read and expanded."""
    src = _photo(tmp_path / "photo.jpg")
    ours = tmp_path / "photo.avif"
    assert _convert([str(src), str(ours)], tiny_weights).exit_code == 0
    r = _convert([str(ours), str(tmp_path / "again.exr")], tiny_weights)
    assert r.exit_code == 1 and "already HDR (PQ)" in r.output and not (tmp_path / "again.exr").exists()
    forced = _convert([str(ours), str(tmp_path / "forced.exr"), "--force"], tiny_weights)
    assert forced.exit_code == 0, forced.output
    for name, transfer in (("seine_hdr_rec2020.avif", "PQ"), ("hdr_room_hlg_bt2020_16bit.png", "HLG")):
        path = shared_path(f"data/fixtures/{name}")
        r = _convert([str(path), str(tmp_path / "x.exr")], tiny_weights)
        assert r.exit_code == 1 and f"already HDR ({transfer})" in r.output, r.output


def test_gainmap_photos_in(tmp_path):
    """The shared phone photo: info describes it; convert says it is already HDR (one line,
    exit 1) unless --force; read as a real SDR/HDR pair."""
    photo = shared_path("data/hdr-video/ultraHDR_gainmap.jpg")
    gm = read_gainmap_info(photo)
    assert gm.base_size == (3072, 4080) and gm.map_size == (768, 1020)
    assert abs(gm.headroom - 2.10) < 0.01
    # info describes it (its JPEG carries side data PyAV has no name for: that once was a traceback)
    r = CliRunner().invoke(main, ["info", str(photo)])
    assert r.exit_code == 0 and "Ultra HDR (gain map, headroom ×2.10)" in r.output and "768×1020" in r.output
    r = CliRunner().invoke(main, ["convert", str(photo), str(tmp_path / "o.exr")])
    assert r.exit_code == 1 and "already HDR (a gain-map JPEG" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o.exr").exists()
    sdr, hdr = read_gainmap_pair(photo)
    assert sdr.shape == hdr.shape == (4080, 3072, 3) and sdr.dtype == np.uint8
    lin = _srgb_linear(sdr[::8, ::8])
    ratio = (hdr[::8, ::8].mean(-1) + 1 / 64) / (lin.mean(-1) + 1 / 64)
    assert 0.9 < float(np.median(ratio)) and float(ratio.max()) <= gm.headroom * 1.05


def test_preview_works_for_stills(tmp_path, tiny_weights):
    src = _photo(tmp_path / "photo.jpg")
    r = _convert([str(src), str(tmp_path / "o.exr"), "--preview", str(tmp_path / "p.png")], tiny_weights)
    assert r.exit_code == 0, r.output
    strip = cv2.imread(str(tmp_path / "p.png"))
    assert strip is not None and strip.shape[1] >= 3 * 256


def _photo_folder(folder: Path, n: int = 2) -> Path:
    """Gain-map photos written by our own writer: a clipped window raised 3×."""
    folder.mkdir()
    for k in range(n):
        rgb = np.zeros((96, 128, 3), np.uint8)
        rgb[:] = (50 + 40 * k, 110, 170)
        rgb[20:50, 30:90] = 255
        lin = _srgb_linear(rgb)
        hdr = lin.copy()
        hdr[20:50, 30:90] *= 3.0
        write_ultrahdr(folder / f"photo{k}.jpg", rgb, lin, hdr)
    return folder


def test_trainer_reads_gainmap_photos_as_real_pairs(tmp_path):
    """A folder of gain-map photos alone is training data: base = SDR, base × map = HDR."""
    from hdrvideo.commands.measure import parse_widths
    from hdrvideo.training.data import PairBank, load_photo_pairs
    from hdrvideo.training.train import TrainConfig, train

    folder = _photo_folder(tmp_path / "photos")
    train_pairs, val_pairs = load_photo_pairs([folder], val_fraction=0)
    assert len(train_pairs) == 2 and not val_pairs
    sdr, hdr = PairBank(train_pairs, "cpu").sample(4, 32, torch.Generator().manual_seed(0))
    assert sdr.shape == hdr.shape == (4, 3, 32, 32) and float(sdr.max()) <= 1 and float(hdr.max()) > 2
    lines: list[str] = []
    cfg = TrainConfig(data=[str(folder)], out=str(tmp_path / "run"), steps=3, batch_size=2, crop=32,
                      model=parse_widths("4,8,4,4,4,2"), val_fraction=0, ckpt_every=3, device="cpu")  # fmt: skip
    summary = train(cfg, log=lines.append)
    assert summary["steps"] == 3 and (tmp_path / "run" / "model.safetensors").exists()
    assert any("2 real SDR/HDR pairs (gain-map photos, packed studio pairs: 100% of samples)" in m for m in lines), lines


def test_eval_reads_gainmap_photos_as_real_pairs(tmp_path):
    from hdrvideo.training.graded import PHOTO, photo_pairs

    (pair,) = photo_pairs([_photo_folder(tmp_path / "photos", 1)], max_side=64)
    assert pair.rendering == PHOTO and pair.sdr.shape == pair.ref.shape == (1, 3, 48, 64)
    peak = float(colour.luminance(pair.ref).amax())
    assert 2.5 * 203 < peak < 3.3 * 203  # the window at three times SDR white
    r = CliRunner().invoke(main, ["eval", "--pairs", "--data", str(tmp_path / "photos"), "--max-side", "64",
                                  "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.output.strip().splitlines()[-1])
    assert PHOTO in next(iter(d.values()))["per_rendering"]
