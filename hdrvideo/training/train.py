"""Training ExpandNet on HDR images and clips (``hdrvideo train``, or ``torchrun -m hdrvideo.train``).

Each step, on the device and with no CPU work per sample:

1. :class:`~hdrvideo.training.data.FrameBank` draws pairs of HDR crops (clip frames t, t+1, or an image
   twice);
2. :class:`~.degrade.VirtualCamera` makes their SDR frames (one camera, or one SDR grade, per
   pair: :meth:`~.degrade.VirtualCamera.render`) and the reference light each was made from
   (the scene for a camera, the HDR grade for a graded rendering); where the data holds
   gain-map photos (real SDR/HDR pairs, :class:`~hdrvideo.training.data.PairBank`), a share
   ``photo_prob`` of the samples is a crop of one instead (SDR: its base; reference: its HDR);
3. the target: the reference scaled as ``convert`` calibrates (its log luminance matched to the SDR
   decoded by BT.1886 on well-exposed pixels), ÷ :data:`TARGET_SCALE` (output 1.0 = 32× SDR
   white), clamped to [0, 1]; or, with ``--teacher``, that network's output (:mod:`.distill`);
4. loss: L1 in a perceptual domain (``log``: natural log with a floor of 1% of SDR white; ``pu21``:
   PU21 at 203 cd/m² for SDR white; or ``linear``) + 5 × (1 − cosine similarity) of the RGB
   vectors (the authors' loss), ×5 where the SDR neared clipping (where ``convert`` uses the
   network); + against false light, ``over_weight`` × how far the prediction exceeds the target
   where the target is not above SDR white (a clipped saturated colour that was never light); +
   the L1 difference of the frame-to-frame change of prediction and target (log domain).

Checkpoints (``checkpoint.pt``: weights, optimiser, scheduler, step, RNG state; ``model.safetensors``)
are written atomically every ``--ckpt-every`` steps; randomness derives from (seed, rank, step), so a
resumed run draws exactly what the killed one would have.
Validation, on the exponential moving average of the weights (``--ema``, :mod:`.select`): held-out
scenes through the virtual camera (PU21, :mod:`hdrvideo.training.evaluate`) and, with
``--val-pairs``, graded pairs of a validation split (:class:`~.select.GradedValidation`). It is
logged to ``log.csv``, TensorBoard (when installed) and ``curves.png``; the best averaged weights
(graded :func:`~.select.selection_score` when there are graded pairs, else PU21-PSNR) go to
``best.safetensors``, the current ones to ``model.safetensors``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.distributed as dist

from ..media.hdrio import MediaError
from ..model import ExpandNet, ExpandNetConfig, load_model, save_model, widen_to_recurrent
from .data import FrameBank, PairBank, load_frames, load_pair_files, load_photo_pairs
from .degrade import CameraConfig, VirtualCamera
from .distill import narrowed, teacher_targets
from .evaluate import evaluate
from .loss import (  # noqa: F401 - TARGET_SCALE, compute_targets, expansion_loss re-exported
    LOSS_DOMAINS,
    TARGET_SCALE,
    compute_targets,
    curve_gain,
    expansion_loss,
    temporal_loss,
)
from .runlog import RunLog, plot_curves  # noqa: F401 - plot_curves re-exported
from .select import GradedValidation, WeightAverage

__all__ = ["TrainConfig", "train", "TARGET_SCALE", "compute_targets", "expansion_loss"]



@dataclass
class TrainConfig:
    data: list[str]
    out: str
    steps: int = 4000
    batch_size: int = 16
    crop: int = 128
    lr: float = 5e-4
    weight_decay: float = 1e-4
    warmup: int = 100
    loss_domain: str = "log"
    temporal_weight: float = 0.5
    highlight_boost: float = 4.0
    over_weight: float = 2.0
    graded_prob: float = 0.5
    photo_prob: float = 0.25  # share of samples taken from gain-map photos, when the data has any
    model: ExpandNetConfig = field(default_factory=ExpandNetConfig)
    val_every: int = 250
    ckpt_every: int = 250
    max_side: int = 1024
    val_fraction: float = 0.1
    seed: int = 0
    device: str | None = None
    time_limit_min: float | None = None
    resume: bool = False
    init: str | None = None  # start from these weights (fine-tuning); their architecture is used
    recurrent: int = 0  # > 0: the recurrent variant with this many state channels (widening --init's model)
    ema: float = 0.999  # decay of the weight average that is validated and saved (0: the raw weights)
    val_pairs: list[str] = field(default_factory=list)  # graded validation references (PQ/HLG videos)
    teacher: str | None = None  # distil: match these weights' output (training/distill.py)
    pair_files: list[str] = field(default_factory=list)  # studio-made pairs (aces.pack_pairs), with the photos
    curve: tuple[float, float] | None = None  # (ip, c): learn what this curve leaves (CalibrationConfig.curve_*)


# -- the pieces of one step ------------------------------------------------------------------


# -- logging ----------------------------------------------------------------------------------


def _inputs(
    bank: FrameBank | None,
    pair_bank: PairBank | None,
    camera: VirtualCamera,
    photo_prob: float,
    cfg: TrainConfig,
    gen: torch.Generator,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step's inputs: (SDR signal, reference light), both (2B, 3, crop, crop), frames in pairs
    (t, t+1). Rendered from the frame bank, with a share ``photo_prob`` of the pairs replaced by
    a real photo pair (its crop twice: a still)."""
    b, c = cfg.batch_size, cfg.crop
    if bank is not None:
        signal, reference = camera.render(bank.sample(b, c, gen).flatten(0, 1), gen, group=2)
    else:
        signal = reference = torch.zeros(2 * b, 3, c, c, device=device)
    if pair_bank is not None and photo_prob > 0:
        real = (torch.rand(b, generator=gen, device=device) < photo_prob).nonzero().flatten()
        if len(real):
            sdr, hdr = pair_bank.sample(len(real), c, gen)
            idx = torch.stack((2 * real, 2 * real + 1), 1).flatten()
            signal = signal.index_copy(0, idx, sdr.repeat_interleave(2, 0))
            reference = reference.index_copy(0, idx, hdr.repeat_interleave(2, 0))
    return signal, reference


class _Interrupt:
    """Ctrl-C (SIGINT) during training: the first one ends the run after the step in progress,
    which then saves the model and the checkpoint as the time limit does; a second one stops at
    once. Single-process runs only (DDP ranks would stop at different steps and wait forever)."""

    def __init__(self, active: bool) -> None:
        import signal
        import threading

        self.requested = False
        self._previous = None
        if active and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def _save_checkpoint(
    path: Path, model: ExpandNet, opt, sched, step: int, cfg: TrainConfig, best: float, avg: WeightAverage
) -> None:
    state = {
        "model": model.state_dict(),
        "ema": avg.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "step": step,
        "best": best,
        "torch_rng": torch.get_rng_state(),
        "config": json.dumps(asdict(cfg)),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


# -- the run ----------------------------------------------------------------------------------


def _distributed() -> tuple[int, int]:
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def train(cfg: TrainConfig, log=print) -> dict:
    """Run (or resume) a training run; returns a summary (steps, time, samples/s, best val)."""
    if cfg.loss_domain not in LOSS_DOMAINS:
        raise ValueError(f"loss domain must be one of {LOSS_DOMAINS}")
    rank, world = _distributed()
    main = rank == 0
    if cfg.device:
        device = torch.device(cfg.device)
    elif torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    else:
        device = torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists() and not cfg.resume:
        raise FileExistsError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")

    t_load = time.perf_counter()
    quiet_log = log if main else (lambda *_: None)
    graded = GradedValidation(cfg.val_pairs, log=quiet_log) if cfg.val_pairs and main else None
    if graded is not None:
        log(f"graded validation: {len(graded.pairs)} pairs from {graded.references} reference frames")
    photos = load_photo_pairs(cfg.data, max_side=cfg.max_side, val_fraction=cfg.val_fraction, log=quiet_log)[0] \
        if cfg.data else []  # fmt: skip
    photos += load_pair_files(cfg.pair_files, cfg.max_side)
    try:
        if not cfg.data:
            raise MediaError("no --data, and no --pairs")
        scenes, val = load_frames(cfg.data, max_side=cfg.max_side, val_fraction=cfg.val_fraction, log=quiet_log)
    except MediaError:
        if not photos:
            raise
        scenes, val = [], []
    bank = FrameBank(scenes, device) if scenes else None
    pair_bank = PairBank(photos, device) if photos else None
    photo_prob = 1.0 if bank is None else cfg.photo_prob if pair_bank is not None else 0.0
    if main:
        n_frames = sum(len(f) for f in bank.frames) if bank is not None else 0
        log(
            f"data: {len(scenes)} training scenes ({n_frames} frames), {len(val)} held out, "
            f"{len(photos)} real SDR/HDR pairs (gain-map photos, packed studio pairs: {photo_prob:.0%} of samples), "
            f"loaded in {time.perf_counter() - t_load:.1f} s onto {device}"
        )

    torch.manual_seed(cfg.seed)
    resume = torch.load(ckpt_path, map_location=device, weights_only=False) if cfg.resume and ckpt_path.exists() else None
    if resume is not None:  # the architecture the run was started with, whatever --widths/--init say now
        model = ExpandNet(ExpandNetConfig.from_dict(json.loads(resume["config"])["model"])).to(device)
    elif cfg.teacher is not None and cfg.init is None:  # the teacher's strongest channels
        model = narrowed(load_model(cfg.teacher, device=device), cfg.model)
    elif cfg.init is not None:
        model = load_model(cfg.init, device=device).train()  # fine-tune: same architecture as the file
        quiet_log(f"initialised from {cfg.init}")
    else:
        model = ExpandNet(replace(cfg.model, temporal_width=cfg.recurrent or cfg.model.temporal_width)).to(device)
    if cfg.recurrent and not model.recurrent:
        model = widen_to_recurrent(model, cfg.recurrent).train()  # the per-frame output, to start from
    if model.recurrent and main:
        log(f"recurrent variant: a {model.config.temporal_width}-channel state at 1/8 resolution")
    cfg.model = model.config
    teacher = load_model(cfg.teacher, device=device).eval() if cfg.teacher else None
    model = model.to(memory_format=torch.channels_last) if device.type == "cuda" else model
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    avg = WeightAverage(model, cfg.ema)

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        p = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    start, best = 0, -math.inf
    if resume is not None:
        state = resume
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        avg.load_state_dict(state.get("ema"))
        start, best = int(state["step"]), float(state["best"])
        torch.set_rng_state(state["torch_rng"])
        if main:
            log(f"resumed {out} at step {start}")
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    camera = VirtualCamera(CameraConfig(graded_prob=cfg.graded_prob))
    gen = torch.Generator(device=device)
    logger = RunLog(out, main)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )
    t0 = time.perf_counter()
    t_window, samples_window = t0, 0
    step = start
    first_row = True
    interrupt = _Interrupt(world == 1)
    try:
        while step < cfg.steps:
            if cfg.time_limit_min is not None and time.perf_counter() - t0 > cfg.time_limit_min * 60:
                if main:
                    log(f"time limit reached at step {step}")
                break
            if interrupt.requested:
                log(f"interrupted at step {step}: the model and the checkpoint are saved (--resume continues)")
                break
            gen.manual_seed(cfg.seed * 1_000_003 + rank * 7919 + step)
            signal, reference = _inputs(bank, pair_bank, camera, photo_prob, cfg, gen, device)
            if cfg.curve is not None:  # the network learns what the curve under it leaves
                reference = reference * torch.exp(-curve_gain(signal, cfg.curve))
            ones = torch.ones(len(signal), device=device)
            target = teacher_targets(teacher, signal) if teacher else compute_targets(reference, ones, signal)
            x = signal.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else signal
            with autocast:
                if model.recurrent:  # frame t from a fresh state, frame t+1 from t's: what convert does
                    pairs = x.unflatten(0, (-1, 2))
                    first, h = net(pairs[:, 0], state=None, return_state=True)
                    pred = torch.stack((first, net(pairs[:, 1], state=h)), 1).flatten(0, 1).float()
                else:
                    pred = net(x).float()
            loss = expansion_loss(pred, target, signal, cfg.loss_domain, cfg.highlight_boost, cfg.over_weight)
            tl = temporal_loss(pred.unflatten(0, (-1, 2)), target.unflatten(0, (-1, 2)))
            total = loss + cfg.temporal_weight * tl
            opt.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            avg.update()
            step += 1
            samples_window += cfg.batch_size * 2 * world
            if not main:
                continue
            row: dict = {"step": step}
            if step % 25 == 0 or step == cfg.steps:
                now = time.perf_counter()
                row.update(
                    loss=round(loss.item(), 5),
                    temporal=round(tl.item(), 5),
                    lr=sched.get_last_lr()[0],
                    samples_per_s=round(samples_window / (now - t_window), 2),
                )
                t_window, samples_window = now, 0
            if (val or graded) and (step % cfg.val_every == 0 or step == cfg.steps):
                judged, meta = avg.module.eval(), {"step": str(step)}
                if val:
                    r = evaluate(judged, val, device)
                    row.update(val_psnr=round(r.psnr, 3), val_psnr_clipped=round(r.psnr_clipped, 3), val_ssim=round(r.ssim, 4))
                    score = r.psnr
                    meta["val_pu21_psnr"] = f"{r.psnr:.3f}"
                if graded is not None:
                    g = graded(judged)
                    row.update({f"graded_{k}": round(g[k], 3) for k in ("pu21_psnr", "pu21_clipped", "false_hl", "score")})
                    score = g["score"]
                    meta.update({f"graded_{k}": f"{v:.3f}" for k, v in g.items()})
                judged.train()
                if score > best:
                    best = score
                    save_model(judged, out / "best.safetensors", meta)
            if len(row) > 1:
                logger.write(row, upto=start if first_row else None)
                first_row = False
                log(" ".join(f"{k}={v}" for k, v in row.items()))
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                save_model(avg.module, out / "model.safetensors", {"step": step})
                _save_checkpoint(ckpt_path, model, opt, sched, step, cfg, best, avg)
    finally:
        interrupt.restore()
    if world > 1:
        dist.barrier()
    elapsed = time.perf_counter() - t0
    summary = {
        "steps": step,
        "steps_this_run": step - start,
        "seconds": round(elapsed, 1),
        "samples_per_s": round((step - start) * cfg.batch_size * 2 * world / max(elapsed, 1e-9), 2),
        "best_val_score": best if best > -math.inf else None,
        "device": str(device),
        "world_size": world,
        "interrupted": interrupt.requested,
    }
    if device.type == "cuda":
        try:
            summary["gpu_utilization_pct"] = torch.cuda.utilization(device)
        except Exception:  # noqa: BLE001 - needs pynvml; optional
            pass
    if main:
        if step % cfg.ckpt_every and step != cfg.steps:  # stopped by the time limit between checkpoints
            save_model(avg.module, out / "model.safetensors", {"step": step})
            _save_checkpoint(ckpt_path, model, opt, sched, step, cfg, best, avg)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if world > 1:
        dist.destroy_process_group()
    return summary
