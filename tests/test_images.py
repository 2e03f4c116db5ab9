"""Image mode: SDR photos to linear HDR .exr / .hdr."""

from __future__ import annotations

import cv2
import numpy as np
import OpenEXR
import pytest
from click.testing import CliRunner

from hdrvideo.cli import main
from tests.media import sdr_frame


def _read_exr(path) -> np.ndarray:
    with OpenEXR.File(str(path)) as f:
        return f.channels()["RGB"].pixels.astype(np.float32)


@pytest.mark.parametrize("ext", [".exr", ".hdr"])
def test_photo_to_linear_hdr(tmp_path, tiny_weights, ext):
    rgb = sdr_frame(0, 97, 61)  # odd size is fine for images
    src = tmp_path / "photo.png"
    cv2.imwrite(str(src), rgb[:, :, ::-1])
    out = tmp_path / f"photo{ext}"
    r = CliRunner().invoke(main, ["convert", str(src), str(out), "--weights", str(tiny_weights), "-q"])
    assert r.exit_code == 0, r.output
    hdr = _read_exr(out) if ext == ".exr" else cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    assert hdr.shape == (61, 97, 3)
    # well-exposed pixels are the BT.1886-decoded SDR (1.0 = SDR white), within half-float error
    sig = rgb.astype(np.float32) / 255
    well = sig.max(-1) < 0.75
    np.testing.assert_allclose(hdr[well], (sig**2.4)[well], rtol=2e-2, atol=2e-3)
    assert not list(tmp_path.glob(".*partial*"))


def test_folder_of_photos(tmp_path, tiny_weights):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"p{i}.jpg"), sdr_frame(i, 64, 48))
    r = CliRunner().invoke(main, ["convert", str(folder), str(tmp_path / "out"), "--weights", str(tiny_weights), "-q"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.exr", "p1.exr"]


def test_folder_with_two_inputs_of_one_stem_writes_both(tmp_path, tiny_weights):
    """Issue 27: still.png and still.jpg both became still.exr, one overwriting the other."""
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "still.png"), sdr_frame(0, 64, 48))
    cv2.imwrite(str(folder / "still.jpg"), sdr_frame(5, 64, 48))
    cv2.imwrite(str(folder / "other.png"), sdr_frame(9, 64, 48))
    r = CliRunner().invoke(main, ["convert", str(folder), str(tmp_path / "out"), "--weights", str(tiny_weights)])
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["other.exr", "still.jpg.exr", "still.png.exr"] and "3 HDR image" in r.output


def test_empty_folder_and_bad_image(tmp_path, tiny_weights):
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(
        main, ["convert", str(tmp_path / "empty"), str(tmp_path / "o"), "--weights", str(tiny_weights)]
    )
    assert r.exit_code == 1 and "no images" in r.output
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    r = CliRunner().invoke(main, ["convert", str(bad), str(tmp_path / "o.exr"), "--weights", str(tiny_weights)])
    assert r.exit_code == 1 and "not a readable image" in r.output and "Traceback" not in r.output
