"""Training: HDR loaders, the virtual camera, targets and loss, PU21, checkpoints, resume, DDP, eval."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hdrvideo import colour
from hdrvideo.colour.pu21 import PU21_PARAMS, pu21_encode, pu21_psnr
from hdrvideo.media.hdrio import MediaError, find_media, read_hdr_image, rgb_to_xyz_matrix
from hdrvideo.model import ExpandNet, ExpandNetConfig, load_model, save_model
from hdrvideo.training.data import FrameBank, load_frames
from hdrvideo.training.degrade import CameraConfig, VirtualCamera, auto_exposure, ycbcr420_roundtrip
from hdrvideo.training.train import TARGET_SCALE, compute_targets, expansion_loss
from tests.conftest import REPO

TINY = "4,8,4,4,4,2"


def hdr_scene(seed: int, h: int = 96, w: int = 128) -> np.ndarray:
    """(H, W, 3) float32 linear HDR: a textured scene with a small light 50× brighter."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.05 + 0.3 * (1 + np.sin(xx / (5 + seed) + rng.uniform(0, 6))) * (1 + np.cos(yy / 7))
    rgb = np.stack([base * c for c in rng.uniform(0.6, 1.2, 3)], -1).astype(np.float32)
    cy, cx = rng.integers(20, h - 20), rng.integers(20, w - 20)
    rgb[(yy - cy) ** 2 + (xx - cx) ** 2 < 64] = 50.0
    return rgb


def write_exr(path: Path, channels: dict[str, np.ndarray]) -> None:
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {k: np.ascontiguousarray(v, dtype=np.float16) for k, v in channels.items()}) as f:
        f.write(str(path))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """6 images (.hdr, .exr, float .tif) and a 4-frame EXR sequence with a moving light."""
    root = tmp_path_factory.mktemp("hdrdata")
    for i in range(6):
        img = hdr_scene(i)
        if i % 3 == 0:
            cv2.imwrite(str(root / f"scene{i}.hdr"), img[:, :, ::-1])
        elif i % 3 == 1:
            write_exr(root / f"scene{i}.exr", {"RGB": img})
        else:
            cv2.imwrite(str(root / f"scene{i}.tif"), img[:, :, ::-1])
    seq = root / "clip"
    seq.mkdir()
    for t in range(4):
        write_exr(seq / f"frame.{t:04d}.exr", {"RGB": np.roll(hdr_scene(9), 4 * t, axis=1)})
    return root


# -- loaders ------------------------------------------------------------------------------------


def test_read_formats_agree(tmp_path):
    img = hdr_scene(1)
    cv2.imwrite(str(tmp_path / "a.hdr"), img[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "a.tif"), img[:, :, ::-1])
    write_exr(tmp_path / "a.exr", {"RGB": img})
    for name, tol in (("a.hdr", 0.02), ("a.tif", 1e-6), ("a.exr", 1e-3)):
        got = read_hdr_image(tmp_path / name)
        assert got.shape == img.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, img, rtol=tol, atol=1e-3, err_msg=name)


def test_exr_luminance_chroma_and_luminance_only(tmp_path):
    img = hdr_scene(2, 64, 64)
    w = rgb_to_xyz_matrix(((0.64, 0.33), (0.30, 0.60), (0.15, 0.06), (0.3127, 0.3290)))[1]
    y = img @ w
    ry = img[..., 0] / y - 1
    by = img[..., 2] / y - 1
    write_exr(tmp_path / "yc.exr", {"Y": y, "RY": ry, "BY": by})
    np.testing.assert_allclose(read_hdr_image(tmp_path / "yc.exr"), img, rtol=5e-3, atol=2e-3)
    write_exr(tmp_path / "y.exr", {"Y": y})
    grey = read_hdr_image(tmp_path / "y.exr")
    np.testing.assert_allclose(grey[..., 0], grey[..., 2])
    np.testing.assert_allclose(grey[..., 1], y, rtol=1e-3, atol=1e-3)


def test_primaries_matrix_matches_colour_science():
    colour_science = pytest.importorskip("colour")
    xy = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06), (0.3127, 0.3290))
    ref = colour_science.RGB_COLOURSPACES["ITU-R BT.709"].matrix_RGB_to_XYZ
    np.testing.assert_allclose(rgb_to_xyz_matrix(xy), ref, atol=1e-4)


def test_bad_files_are_skipped_with_a_reason(tmp_path):
    (tmp_path / "broken.exr").write_bytes(b"not an exr")
    (tmp_path / "ldr.tif").write_bytes(b"")
    cv2.imwrite(str(tmp_path / "ok.hdr"), hdr_scene(3)[:, :, ::-1])
    with pytest.raises(MediaError, match="broken.exr"):
        read_hdr_image(tmp_path / "broken.exr")
    said = []
    train, val = load_frames([tmp_path], val_fraction=0.0, log=said.append)
    assert len(train) == 1 and not val
    assert any("broken.exr" in s for s in said)
    with pytest.raises(MediaError):
        load_frames([tmp_path / "missing"], log=said.append)


def test_find_media_and_bank(tiny_data):
    images, clips = find_media(tiny_data)
    assert len(images) == 6 and len(clips) == 1 and len(clips[0]) == 4
    train, val = load_frames([tiny_data], val_fraction=0.0)
    assert len(train) == 7 and sum(s.is_clip for s in train) == 1
    assert all(s.frames.dtype == torch.float16 for s in train)
    bank = FrameBank(train, "cpu")
    gen = torch.Generator().manual_seed(0)
    pairs = bank.sample(10, 48, gen)
    assert pairs.shape == (10, 2, 3, 48, 48) and pairs.dtype == torch.float32
    assert torch.isfinite(pairs).all() and pairs.min() >= 0
    gen.manual_seed(0)
    assert torch.equal(bank.sample(10, 48, gen), pairs)  # reproducible from the generator


def test_held_out_split_is_stable(tiny_data):
    a = [s.name for s in load_frames([tiny_data], val_fraction=0.5)[1]]
    b = [s.name for s in load_frames([tiny_data], val_fraction=0.5)[1]]
    assert a == b and 0 < len(a) < 7


# -- the virtual camera ---------------------------------------------------------------------------


def _hdr_batch(n: int = 4) -> torch.Tensor:
    return torch.stack([torch.from_numpy(hdr_scene(i, 64, 64)).permute(2, 0, 1) for i in range(n)])


def test_auto_exposure_puts_log_average_at_018():
    hdr = _hdr_batch()
    e = auto_exposure(hdr)
    y = colour.luminance(hdr * e.view(-1, 1, 1, 1), colour.LUMA_BT709).clamp(min=1e-6)
    np.testing.assert_allclose(torch.exp(torch.log(y).flatten(1).mean(1)).numpy(), 0.18, rtol=1e-4)


def test_clipping_and_8bit_quantisation_and_exposure():
    cam = VirtualCamera(CameraConfig(shot_noise=0, read_noise=0, ycbcr420_prob=0, jpeg_prob=0))
    hdr = _hdr_batch()
    gen = torch.Generator().manual_seed(1)
    sig, e = cam(hdr, gen, curve="srgb", stops=torch.zeros(4))
    assert torch.allclose(e, auto_exposure(hdr))
    codes = sig * 255
    assert torch.allclose(codes, codes.round(), atol=1e-4)  # on the 8-bit grid
    lin = hdr * e.view(-1, 1, 1, 1)
    assert (sig[lin >= 1] == 1).all()  # clipped at the sensor's white
    expect = torch.round(colour.srgb_inverse_eotf(lin.clamp(0, 1)) * 255) / 255
    assert torch.allclose(sig, expect, atol=1 / 255 + 1e-6)
    brighter, _ = cam(hdr, gen, curve="srgb", stops=torch.ones(4))
    assert brighter.mean() > sig.mean()


def test_noise_adds_variance_and_pairs_share_the_camera():
    hdr = _hdr_batch(2).repeat_interleave(2, 0)  # two pairs of identical frames
    quiet = VirtualCamera(CameraConfig(shot_noise=0, read_noise=0, ycbcr420_prob=0, jpeg_prob=0))
    noisy = VirtualCamera(CameraConfig(shot_noise=0.02, read_noise=0.01, ycbcr420_prob=0, jpeg_prob=0))
    gen = torch.Generator().manual_seed(2)
    s0, e0 = quiet(hdr, gen, group=2)
    assert torch.equal(e0[0], e0[1]) and torch.equal(e0[2], e0[3])
    assert torch.equal(s0[0], s0[1])  # same camera, no noise: identical frames
    s1, _ = noisy(hdr, gen, group=2)
    assert not torch.equal(s1[0], s1[1])  # independent noise per frame
    assert (s1[0] - s1[1]).abs().mean() > 1 / 255


@pytest.mark.parametrize("curve", ["gamma", "filmic", "reinhard", "drago"])
def test_each_response_is_monotonic_and_in_range(curve):
    ramp = torch.logspace(-3, 1.5, 256).view(1, 1, 1, 256).expand(1, 3, 16, 256).contiguous()
    cam = VirtualCamera(CameraConfig(shot_noise=0, read_noise=0, ycbcr420_prob=0, jpeg_prob=0))
    sig, _ = cam(ramp, torch.Generator().manual_seed(3), curve=curve)
    row = sig[0, 1, 8]
    assert row.min() >= 0 and row.max() <= 1
    assert (row[1:] >= row[:-1] - 1e-6).all()
    if curve in ("reinhard", "drago"):
        assert (sig < 1).float().mean() > 0.95  # tone mappers compress instead of clipping


def test_ycbcr420_blurs_chroma_not_luma():
    sig = torch.zeros(1, 3, 16, 16)
    sig[:, 0, :, 7:] = 0.8  # a red edge on an odd column
    sig[:, 1:, :, :] = 0.3
    out = ycbcr420_roundtrip(sig)
    y = colour.luminance(sig, colour.LUMA_BT709)
    assert (colour.luminance(out, colour.LUMA_BT709) - y).abs().max() < 0.06
    assert (out[0, 0, :, 6] - sig[0, 0, :, 6]).abs().min() > 0.05  # chroma leaks across the edge


def test_jpeg_adds_artefacts():
    hdr = _hdr_batch()
    base = dict(shot_noise=0, read_noise=0, ycbcr420_prob=0)
    a, _ = VirtualCamera(CameraConfig(jpeg_prob=0, **base))(hdr, torch.Generator().manual_seed(4), curve="srgb")
    cfg = CameraConfig(jpeg_prob=1, jpeg_quality=(30, 30), **base)
    b, _ = VirtualCamera(cfg)(hdr, torch.Generator().manual_seed(4), curve="srgb")
    assert 0.5 / 255 < (a - b).abs().mean() < 0.1


# -- targets and loss ---------------------------------------------------------------------------


def test_targets_put_midtones_where_the_sdr_is():
    hdr = _hdr_batch()
    cam = VirtualCamera(CameraConfig(jpeg_prob=0, ycbcr420_prob=0))
    sig, e = cam(hdr, torch.Generator().manual_seed(5), curve="gamma")
    t = compute_targets(hdr, e, sig) * TARGET_SCALE
    ok = (sig.amin(1) > 0.06) & (sig.amax(1) < 0.85)
    ratio = (
        colour.luminance(t, colour.LUMA_BT709)[:, 0][ok]
        / colour.luminance(colour.bt1886_eotf(sig), colour.LUMA_BT709)[:, 0][ok]
    )
    assert abs(float(torch.log(ratio).mean())) < 0.05
    light = hdr.amin(1) >= 50  # the 50× lights: clipped by the camera, far above white in the target
    assert (sig.amin(1)[light] == 1).all()
    assert (colour.luminance(t, colour.LUMA_BT709)[:, 0][light] > 4).all()


def test_training_steps_lower_the_loss():
    torch.manual_seed(0)
    model = ExpandNet(ExpandNetConfig(8, 16, 8, 8, 8, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    hdr = _hdr_batch()
    sig, e = VirtualCamera()(hdr, torch.Generator().manual_seed(6))
    target = compute_targets(hdr, e, sig)
    losses = []
    for _ in range(40):
        loss = expansion_loss(model(sig), target, sig)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.75 * np.mean(losses[:5])


# -- PU21 ---------------------------------------------------------------------------------------


def test_pu21_follows_the_published_formula():
    p1, p2, p3, p4, p5, p6, p7 = PU21_PARAMS
    lum = np.array([0.005, 0.01, 0.1, 1, 10, 100, 1000, 4000, 10000])
    expect = p7 * (((p1 + p2 * lum**p4) / (1 + p3 * lum**p4)) ** p5 - p6)
    got = pu21_encode(torch.tensor(lum, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, expect, rtol=1e-12)
    assert abs(got[0]) < 0.01 and 255 < got[5] < 258  # ≈ 0 at the floor, ≈ 256 at 100 cd/m²
    # clamped outside [0.005, 10000]
    assert pu21_encode(torch.tensor([1e-4, 1e5])).tolist() == pytest.approx([got[0], got[-1]], abs=1e-3)


def test_pu21_psnr_known_error():
    ref = torch.full((1, 3, 8, 8), 100.0)
    p100 = float(pu21_encode(torch.tensor(100.0)))
    test = torch.full_like(ref, 100.0)
    test[..., :4, :] = 200.0  # half the pixels off by PU21(200) − PU21(100)
    d = float(pu21_encode(torch.tensor(200.0))) - p100
    expect = 10 * np.log10(256**2 / (0.5 * d * d))
    assert float(pu21_psnr(test, ref)) == pytest.approx(expect, rel=1e-5)
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[..., :4, :] = True
    assert float(pu21_psnr(test, ref, mask)) == pytest.approx(10 * np.log10(256**2 / (d * d)), rel=1e-5)


# -- the command: checkpoints, resume after a kill, DDP, eval -------------------------------------


def _train_cmd(data: Path, out: Path, steps: int, extra: list[str] = ()) -> list[str]:
    return [
        sys.executable, "-m", "hdrvideo", "train", "--data", str(data), "--out", str(out),
        "--steps", str(steps), "--batch-size", "2", "--crop", "64", "--widths", TINY,
        "--val-fraction", "0", "--ckpt-every", "5", "--device", "cpu", *extra,
    ]  # fmt: skip


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def test_killed_run_resumes_exactly(tiny_data, tmp_path):
    steps = 60
    full = tmp_path / "full"
    subprocess.run(_train_cmd(tiny_data, full, steps), check=True, env=_env(), capture_output=True, timeout=300)

    run = tmp_path / "killed"
    p = subprocess.Popen(_train_cmd(tiny_data, run, steps), env=_env(), stderr=subprocess.PIPE, text=True)
    ckpt = run / "checkpoint.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not (run / "summary.json").exists(), "the run finished before it could be killed"
    killed_at = torch.load(ckpt, weights_only=False)["step"]
    assert 0 < killed_at < steps
    # resuming without --resume is refused, with --resume it continues
    r = subprocess.run(_train_cmd(tiny_data, run, steps), env=_env(), capture_output=True, text=True)
    assert r.returncode == 1 and "--resume" in r.stderr
    r = subprocess.run(_train_cmd(tiny_data, run, steps, ["--resume"]), env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"resumed {run} at step {killed_at}" in r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["steps"] == steps
    a = load_model(full / "model.safetensors", device="cpu").state_dict()
    b = load_model(run / "model.safetensors", device="cpu").state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows = (run / "log.csv").read_text().splitlines()
    steps_logged = [int(float(r.split(",")[0])) for r in rows[1:]]
    assert steps_logged == sorted(set(steps_logged))  # no step logged twice after the resume


def test_validation_logs_and_plot(tiny_data, tmp_path):
    out = tmp_path / "run"
    cmd = _train_cmd(tiny_data, out, 4, ["--val-every", "2"])
    cmd[cmd.index("--val-fraction") + 1] = "0.4"
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    header, *rows = (out / "log.csv").read_text().splitlines()
    assert "val_psnr" in header and len(rows) == 2
    assert all(float(row.split(",")[header.split(",").index("val_psnr")]) > 0 for row in rows)
    assert cv2.imread(str(out / "curves.png")) is not None
    assert (out / "best.safetensors").is_file()


def test_ctrl_c_saves_the_model_and_a_checkpoint_that_resumes(tiny_data, tmp_path):
    """A user who stops training with Ctrl-C keeps the steps done: the step in progress ends,
    model.safetensors and the checkpoint are written, exit 130; --resume carries on from there."""
    run = tmp_path / "stopped"
    p = subprocess.Popen(_train_cmd(tiny_data, run, 100000, ["--ckpt-every", "100000"]), env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 120
    while not (run / "log.csv").exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted at step" in err
    summary = json.loads(out.strip().splitlines()[-1])
    stopped_at = summary["steps"]
    assert summary["interrupted"] and 0 < stopped_at < 100000
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] == stopped_at
    assert load_model(run / "model.safetensors", device="cpu") is not None
    r = subprocess.run(_train_cmd(tiny_data, run, stopped_at + 3, ["--resume"]), env=_env(), capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0 and f"resumed {run} at step {stopped_at}" in r.stderr, r.stderr[-2000:]


def test_ddp_two_processes_on_cpu(tiny_data, tmp_path):
    out = tmp_path / "ddp"
    cmd = _train_cmd(tiny_data, out, 6)[3:]  # drop "python -m hdrvideo"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "hdrvideo.train", *cmd[1:]]
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6
    assert load_model(out / "model.safetensors", device="cpu") is not None


def test_eval_command_prints_a_table(tiny_data, tmp_path):
    from hdrvideo.model import save_model

    torch.manual_seed(0)
    weights = tmp_path / "w.safetensors"
    save_model(ExpandNet(ExpandNetConfig(4, 8, 4, 4, 4, 2)), weights)
    r = subprocess.run(
        [sys.executable, "-m", "hdrvideo", "eval", "--data", str(tiny_data), "--all", "--model", str(weights)],
        env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("|")]
    assert len(lines) == 4 and "linear" in lines[2] and "w.safetensors" in lines[3]
    cells = [float(c) for c in lines[2].split("|")[2:5]]
    assert all(np.isfinite(cells)) and cells[0] > 10


def test_hdr_video_loader_decodes_pq_and_hlg_to_linear_light():
    from hdrvideo.media.hdrio import read_hdr_video
    from tests.conftest import shared_path

    pq = list(read_hdr_video(shared_path("data/fixtures/pq_av1_480x270_30f.mp4"), max_frames=3))
    assert len(pq) == 3 and pq[0].shape == (270, 480, 3) and pq[0].dtype == np.float32
    assert 1 < np.median(pq[0]) < 1000 and pq[0].max() <= 10000  # cd/m², PQ range
    hlg = next(read_hdr_video(shared_path("data/fixtures/hlg_hevc_1280x720_4f.mov")))
    # HLG on a 1000 cd/m² display; BT.2020 → BT.709 can push one channel of a saturated colour past it
    assert 0 <= hlg.min() and 500 < hlg.max() <= 1100
    with pytest.raises(MediaError, match="not HDR"):
        next(read_hdr_video(shared_path("data/fixtures/sdr_h264_1080x720_30f.mp4")))


def test_init_fine_tunes_from_given_weights(tiny_data, tmp_path):
    torch.manual_seed(1)
    start = ExpandNet(ExpandNetConfig(4, 8, 4, 4, 4, 3))  # not TINY: the file's architecture wins
    init = tmp_path / "start.safetensors"
    save_model(start, init)
    out = tmp_path / "ft"
    cmd = _train_cmd(tiny_data, out, 2, ["--init", str(init), "--lr", "1e-6"])
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"initialised from {init}" in r.stderr
    tuned = load_model(out / "model.safetensors", device="cpu")
    assert tuned.config == start.config
    a, b = start.state_dict(), tuned.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)  # two tiny steps from the start
    assert any(not torch.equal(a[k], b[k]) for k in a)  # … that did train


# -- graded renderings and the penalty on false light ---------------------------------------------


def test_render_mixes_cameras_and_graded_sdr_with_matching_references():
    hdr = _hdr_batch().repeat(4, 1, 1, 1)
    cam = VirtualCamera(CameraConfig(graded_prob=0.5, jpeg_prob=0, ycbcr420_prob=0, shot_noise=0, read_noise=0))
    sig, ref = cam.render(hdr, torch.Generator().manual_seed(3), group=2)
    assert sig.shape == hdr.shape == ref.shape and float(sig.min()) >= 0 and float(sig.max()) <= 1
    # a camera's reference is the scene scaled (one factor); a grade's is rolled off below its peak
    scale = (ref / hdr.clamp(min=1e-6)).flatten(1)
    camera = (scale.std(1) / scale.mean(1)) < 1e-3
    assert 0 < int(camera.sum()) < len(hdr)
    graded_peak = (ref[~camera].flatten(1).amax(1) * colour.SDR_WHITE_NITS)
    assert bool((graded_peak <= 4000 * 1.2).all())  # the HDR grade's mastering peak (× BT.2020→709 gain)
    assert torch.equal(camera.view(-1, 2)[:, 0], camera.view(-1, 2)[:, 1])  # a pair shares its path
    # the same draw gives the same samples (resumable training)
    sig2, ref2 = cam.render(hdr, torch.Generator().manual_seed(3), group=2)
    assert torch.equal(sig, sig2) and torch.equal(ref, ref2)


def test_over_expansion_costs_more_than_under_expansion_where_the_target_is_not_bright():
    target = torch.full((1, 3, 16, 16), 0.5 / TARGET_SCALE)  # half of SDR white
    sig = torch.full((1, 3, 16, 16), 0.98)  # the SDR clipped there (e.g. a saturated colour or a graded roll-off)
    over, under = target * 3, target / 3
    sym = expansion_loss(over, target, sig), expansion_loss(under, target, sig)
    assert float(sym[0]) < 1.1 * float(sym[1])  # L1 in log: nearly symmetric without the term
    asym = expansion_loss(over, target, sig, over_weight=2.0), expansion_loss(under, target, sig, over_weight=2.0)
    assert float(asym[0]) > 2 * float(asym[1])
    bright = torch.full((1, 3, 16, 16), 4.0 / TARGET_SCALE)  # a real highlight: no penalty on rising
    assert float(expansion_loss(bright * 2, bright, sig, over_weight=2.0)) == pytest.approx(
        float(expansion_loss(bright * 2, bright, sig)), rel=1e-6
    )


# -- the recurrent variant (issue 17) ------------------------------------------------------------


def test_recurrent_variant_starts_as_the_per_frame_model_and_carries_state():
    from hdrvideo.model import ExpandNet, ExpandNetConfig, widen_to_recurrent

    torch.manual_seed(0)
    per_frame = ExpandNet(ExpandNetConfig(4, 8, 4, 4, 4, 2)).eval()
    wide = widen_to_recurrent(per_frame, 6).eval()
    assert wide.recurrent and wide.config.temporal_width == 6 and not per_frame.recurrent
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        y, h = wide(x, return_state=True)
        assert h.shape == (2, 6, 5, 7)
        torch.testing.assert_close(y, per_frame(x), rtol=0, atol=0)  # widened: the same output
        # a recurrent network whose fusion uses the state: a second identical frame differs
        torch.manual_seed(1)
        rec = ExpandNet(ExpandNetConfig(4, 8, 4, 4, 4, 2, temporal_width=6)).eval()
        y1, h1 = rec(x, return_state=True)
        y2, _ = rec(x, state=h1, return_state=True)
        assert (y2 - y1).abs().max() > 1e-4
        # tiles give the whole frame's result, state included
        torch.testing.assert_close(rec(x, tile=16, state=h1), y2, rtol=1e-5, atol=1e-6)


def test_recurrent_weights_select_the_variant_and_the_processor_carries_its_state(tmp_path):
    from hdrvideo.model import ExpandNet, ExpandNetConfig, load_model, save_model
    from hdrvideo.pipeline.processor import FrameProcessor

    torch.manual_seed(2)
    rec = ExpandNet(ExpandNetConfig(4, 8, 4, 4, 4, 2, temporal_width=4))
    save_model(rec, tmp_path / "r.safetensors")
    loaded = load_model(tmp_path / "r.safetensors", device="cpu")
    assert loaded.recurrent and loaded.config == rec.config
    torch.save(rec.state_dict(), tmp_path / "r.pth")  # no metadata: the architecture from the keys
    assert load_model(tmp_path / "r.pth", device="cpu").config.temporal_width == 4
    frames = np.random.default_rng(0).integers(0, 256, (3, 48, 64, 3), dtype=np.uint8)
    frames[:, 8:24, 8:40] = 255
    proc = FrameProcessor(loaded, "pq")
    first = proc.process(frames[:1])
    assert proc._rnn_state is not None
    proc.process(frames[1:])
    proc.reset()
    assert proc._rnn_state is None
    assert np.array_equal(proc.process(frames[:1]).y, first.y)  # a new clip starts afresh


def test_recurrent_variant_trains_resumes_and_converts(tiny_data, tmp_path):
    run = tmp_path / "rec"
    r = subprocess.run(_train_cmd(tiny_data, run, 6, ["--recurrent", "4", "--time-limit", "5"]), env=_env(),
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "recurrent variant: a 4-channel state" in r.stderr
    r = subprocess.run(_train_cmd(tiny_data, run, 10, ["--resume"]), env=_env(), capture_output=True, text=True,
                       timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr  # --widths now says the per-frame default: the checkpoint's wins
    assert f"resumed {run} at step 6" in r.stderr
    model = load_model(run / "model.safetensors", device="cpu")
    assert model.recurrent and model.config.temporal_width == 4
    from tests.media import make_clip

    clip = make_clip(tmp_path / "in.mp4", 64, 48, frames=6, audio=False)
    r = subprocess.run([sys.executable, "-m", "hdrvideo", "convert", str(clip), str(tmp_path / "o.mkv"), "-q",
                        "--weights", str(run / "model.safetensors"), "--compile", "off"], env=_env(),
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o.mkv").stat().st_size > 0


def test_a_narrowed_student_starts_from_its_teachers_strongest_channels(tiny_model):
    """training/distill.narrowed: at the teacher's own widths it is the teacher (every channel
    kept, in order); narrower, it keeps each layer's strongest filters and their inputs."""
    from hdrvideo.model import ExpandNetConfig
    from hdrvideo.training.distill import narrowed, teacher_targets

    x = torch.rand(2, 3, 40, 56)
    same = narrowed(tiny_model, tiny_model.config).eval()
    with torch.no_grad():
        torch.testing.assert_close(same(x), tiny_model(x))
    small = ExpandNetConfig(local_width=4, local_out=6, mid_width=4, glob_width=4, fuse_width=4)
    student = narrowed(tiny_model, small)
    conv = student.local_net[0][0]
    keep = tiny_model.local_net[0][0].weight.abs().flatten(1).sum(1).topk(4).indices.sort().values
    torch.testing.assert_close(conv.weight, tiny_model.local_net[0][0].weight[keep])
    torch.testing.assert_close(student.local_net[1][0].weight, tiny_model.local_net[1][0].weight[:, keep][
        tiny_model.local_net[1][0].weight.abs().flatten(1).sum(1).topk(6).indices.sort().values])
    assert student(x).shape == x.shape and student.training
    target = teacher_targets(tiny_model, x)
    assert target.dtype == torch.float32 and not target.requires_grad
    with pytest.raises(ValueError, match="wider"):
        narrowed(tiny_model, ExpandNetConfig(local_width=16, local_out=8, mid_width=8, glob_width=8, fuse_width=8))
