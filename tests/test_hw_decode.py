"""Issue 28 #2: NVDEC where the GPU has it, the software decoder otherwise, "without a word of
difference in the output". NVDEC hands frames down as nv12; what the CPU allows is tested here:
that nv12 frames give the software decoder's codes on both input paths (R'G'B' and planes),
end to end through ``convert``, and the choice of decoder with its one-line error."""

from __future__ import annotations

import subprocess
import sys

import av
import numpy as np
import pytest

from hdrvideo.commands import convert as C
from hdrvideo.media import hw_decode as H
from hdrvideo.media.decode import frame_to_input, frame_to_rgb, probe, to_planar
from hdrvideo.media.encode import EncoderSettings
from hdrvideo.pipeline.processor import FrameProcessor
from hdrvideo.pipeline.settings import ConversionSettings, SettingsError
from tests.media import convert_error_line, make_clip

NO_NVDEC = H.nvdec_problem("cuda")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("nvdec") / "in.mp4", 160, 90, frames=10, audio=False)


def _first_frame(path):
    c = av.open(str(path))
    try:
        info = probe(c, path)
        return next(c.decode(video=0)), info
    finally:
        c.close()


def test_nvdec_layout_reads_as_the_software_decoders(clip):
    frame, info = _first_frame(clip)
    nv12 = frame.reformat(format="nv12")  # NVDEC's frames, downloaded to host memory
    direct = nv12.reformat(format="rgb24", src_colorspace=2, dst_colorspace=2).to_ndarray().astype(int)
    rgb = frame_to_rgb(frame, info)
    assert np.abs(direct - rgb).max() > 0, "swscale's nv12 path no longer differs: to_planar may be unneeded"
    np.testing.assert_array_equal(frame_to_rgb(nv12, info), rgb)
    y, cbcr = frame_to_input(frame, info, planes=True)
    y2, cbcr2 = frame_to_input(nv12, info, planes=True)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(cbcr2, cbcr)
    ten = frame.reformat(format="yuv420p10le")  # 10-bit input: NVDEC's p010le
    p010 = ten.reformat(format="p010le")
    assert to_planar(p010).format.name == "yuv420p10le"
    for a, b in zip(to_planar(p010).planes, ten.planes, strict=True):
        assert bytes(a) == bytes(b)
    assert to_planar(frame) is frame



def test_nv12_planes_read_through_dlpack_capsules_as_the_decoders_planes(clip):
    """scripts/nvdec_check.py reads NVDEC frames left on the GPU through DLPack capsules (PyAV
    refuses torch.from_dlpack's stream handshake for hardware frames); the same code on an
    ``nv12`` frame in host memory gives Y (H, W) and CbCr (H/2, W/2, 2) without a copy, equal to
    the planes frame_to_input hands the processor."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("nvdec_check", "scripts/nvdec_check.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    frame, info = _first_frame(clip)
    nv12 = frame.reformat(format="nv12")
    y, cbcr = script.gpu_planes(nv12)
    assert tuple(y.shape) == (90, 160) and tuple(cbcr.shape) == (45, 80, 2) and y.device.type == "cpu"
    assert y.stride(0) == nv12.planes[0].line_size  # a view of the frame's memory, padding and all
    y_ref, cbcr_ref = frame_to_input(frame, info, planes=True)
    np.testing.assert_array_equal(y.numpy(), y_ref)
    np.testing.assert_array_equal(cbcr.permute(2, 0, 1).numpy(), cbcr_ref)

def _convert(clip, out, planes: bool, layout: str | None, monkeypatch) -> np.ndarray:
    """Convert ``clip`` losslessly (FFV1), its frames handed over in ``layout`` (None: as decoded);
    → the output's decoded 10-bit luma and chroma, stacked."""
    real = frame_to_input
    if layout is not None:
        monkeypatch.setattr(C, "frame_to_input", lambda f, info, p: real(f.reformat(format=layout), info, p))
    proc = FrameProcessor(None, "pq", peak_nits=1000.0, method="bt2446c")
    proc.host.takes_planes = planes
    C.convert_video(clip, out, proc, EncoderSettings(codec="ffv1"), batch_size=4, overwrite=True)
    monkeypatch.setattr(C, "frame_to_input", real)
    c = av.open(str(out))
    try:
        return np.stack([np.concatenate([np.frombuffer(p, np.uint8) for p in f.planes]) for f in c.decode(video=0)])
    finally:
        c.close()


@pytest.mark.parametrize("planes", [False, True])
def test_convert_output_is_the_same_whoever_decodes(clip, tmp_path, monkeypatch, planes):
    software = _convert(clip, tmp_path / "sw.mkv", planes, None, monkeypatch)
    nvdec = _convert(clip, tmp_path / "nv.mkv", planes, "nv12", monkeypatch)
    assert software.shape[0] == 10
    np.testing.assert_array_equal(nvdec, software)


def test_decoder_choice(monkeypatch):
    assert H.chosen_decoder("auto", "cpu") == ("software", None)
    assert H.chosen_decoder("software", "cuda") == ("software", None)
    monkeypatch.setattr(H, "_NVDEC_PROBLEMS", {0: None, 1: "Operation not permitted"})
    decoder, note = H.chosen_decoder("auto", "cuda")
    assert decoder == "nvdec" and "NVDEC decodes" in note
    decoder, note = H.chosen_decoder("auto", "cuda:1")
    assert decoder == "software" and "no NVDEC on cuda:1 (Operation not permitted)" in note
    with pytest.raises(H.InputError, match="--decoder nvdec: no NVDEC opens here"):
        H.chosen_decoder("nvdec", "cuda:1")
    with pytest.raises(H.InputError, match="--decoder must be one of"):
        H.chosen_decoder("gpu", "cuda")
    with pytest.raises(SettingsError, match="--decoder must be one of"):
        ConversionSettings(decoder="gpu").validate()
    assert ConversionSettings(decoder="nvdec").decoding("cuda")[0] == "nvdec"


def test_open_decoding_falls_back_to_software(clip):
    """``nvdec`` where the hardware open fails (here: no CUDA device) opens the file in software
    and decodes the same frames; a missing file is still one line in software's words."""
    sw = av.open(str(clip))
    hw = H.open_decoding(clip, "nvdec", "cuda")
    try:
        info = probe(sw, clip)
        for a, b in zip(sw.decode(video=0), hw.decode(video=0), strict=True):
            np.testing.assert_array_equal(frame_to_rgb(b, info), frame_to_rgb(a, info))
    finally:
        sw.close()
        hw.close()
    with pytest.raises(H.InputError, match="input not found"):
        H.open_decoding(clip.parent / "missing.mp4", "nvdec", "cuda")


@pytest.mark.skipif(NO_NVDEC is None, reason="NVDEC opens here")
def test_nvdec_where_none_opens_is_one_line_before_any_work(tmp_path, clip):
    line, seconds = convert_error_line(clip, tmp_path / "o.mkv", "--decoder", "nvdec")
    assert line.startswith("hdrvideo: error: --decoder nvdec: no NVDEC opens here")
    assert "use --decoder software" in line and seconds < 30


@pytest.mark.skipif(NO_NVDEC is not None, reason=f"no NVDEC opens here ({NO_NVDEC})")
def test_nvdec_decodes_the_software_decoders_frames(clip):  # pragma: no cover - an NVIDIA GPU only
    sw, hw = av.open(str(clip)), H.open_decoding(clip, "nvdec", "cuda")
    try:
        info = probe(sw, clip)
        hw_frames = list(hw.decode(video=0))
        assert hw_frames[0].format.name == "nv12", "NVDEC did not decode (software fallback?)"
        for a, b in zip(sw.decode(video=0), hw_frames, strict=True):
            np.testing.assert_array_equal(frame_to_rgb(b, info), frame_to_rgb(a, info))
    finally:
        sw.close()
        hw.close()


def test_the_nvdec_check_script_reports_both_decoders(tmp_path):
    """scripts/nvdec_check.py (gpu_check.sh's nvdec part): the software row always; where NVDEC
    does not open, a row that says why, and exit 0."""
    import json

    cmd = [sys.executable, "scripts/nvdec_check.py", "--size", "192x108", "--frames", "6", "--json"]
    rows = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout)
    assert rows[0]["path"] == "software" and rows[0]["frames"] == 6 and rows[0]["fps"] > 0
    if NO_NVDEC is not None:
        assert rows[1] == {"path": "nvdec", "error": f"no NVDEC here ({NO_NVDEC})"}
    else:  # pragma: no cover - an NVIDIA GPU only
        assert rows[1]["same_rgb_as_software"] and rows[1]["format"] == "nv12"
