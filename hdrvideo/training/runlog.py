"""A training run's log: ``log.csv``, TensorBoard (when installed) and ``curves.png``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

__all__ = ["RunLog", "plot_curves"]


def plot_curves(rows: list[dict], path: Path) -> None:
    """Loss (left) and validation PU21-PSNR (right) against step, as a PNG (OpenCV drawing)."""
    import cv2

    img = np.full((360, 960, 3), 255, np.uint8)
    series = [
        ("train loss", [(r["step"], r["loss"]) for r in rows if r.get("loss") not in (None, "")]),
        ("val PU21-PSNR dB", [(r["step"], r["val_psnr"]) for r in rows if r.get("val_psnr") not in (None, "")]),
    ]
    graded = [(r["step"], r["graded_score"]) for r in rows if r.get("graded_score") not in (None, "")]
    if graded:  # the figure best.safetensors is chosen on
        series[1] = ("graded validation score", graded)
    for k, (title, pts) in enumerate(series):
        x0, y0, w, h = 60 + k * 480, 30, 400, 290
        cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), (0, 0, 0), 1)
        cv2.putText(img, title, (x0 + 5, y0 - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
        if len(pts) < 1:
            continue
        xs, ys = np.array([p[0] for p in pts], float), np.array([float(p[1]) for p in pts])
        lo, hi = float(ys.min()), float(ys.max())
        hi = hi if hi > lo else lo + 1
        sx = (xs - xs.min()) / max(1.0, xs.max() - xs.min()) * w + x0
        sy = y0 + h - (ys - lo) / (hi - lo) * h
        cv2.polylines(img, [np.stack([sx, sy], 1).astype(np.int32)], False, (200, 80, 0), 2)
        for v, yy in ((hi, y0 + 12), (lo, y0 + h - 4)):
            cv2.putText(img, f"{v:.3g}", (x0 - 55, yy), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        cv2.putText(
            img, f"step {int(xs.max())}", (x0 + w - 90, y0 + h + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0,) * 3, 1
        )
    tmp = path.with_name(path.stem + ".tmp.png")
    cv2.imwrite(str(tmp), img)
    tmp.replace(path)


class RunLog:
    """``log.csv`` (rewritten atomically; a resumed run drops rows past its checkpoint),
    TensorBoard when installed, and ``curves.png``."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.path = out / "log.csv"
        self.rows: list[dict] = []
        self.fields = ["step", "loss", "temporal", "lr", "samples_per_s", "val_psnr", "val_psnr_clipped", "val_ssim",
                       "graded_pu21_psnr", "graded_pu21_clipped", "graded_false_hl", "graded_score"]
        if enabled and self.path.exists():
            with open(self.path) as f:
                self.rows = [{k: (float(v) if v else "") for k, v in r.items()} for r in csv.DictReader(f)]
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                print("tensorboard is not installed: logging to log.csv and curves.png only")

    def write(self, row: dict, upto: int | None = None) -> None:
        if not self.enabled:
            return
        if upto is not None:  # a resumed run drops rows past its checkpoint
            self.rows = [r for r in self.rows if int(r["step"]) <= upto]
        self.rows.append(row)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            wr = csv.DictWriter(f, self.fields)
            wr.writeheader()
            wr.writerows({k: r.get(k, "") for k in self.fields} for r in self.rows)
        tmp.replace(self.path)
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and v not in ("", None):
                    self.tb.add_scalar(k, float(v), int(row["step"]))
            self.tb.flush()
        plot_curves(self.rows, self.path.with_name("curves.png"))
