"""A virtual SDR camera: linear HDR crops in, realistic 8-bit SDR frames out, batched on the device.

Each sample gets its own random draw (from one ``torch.Generator``, so a run is reproducible and
resumable), in the order a real camera and a video chain apply them:

1. exposure: auto-exposure (the frame's log-average luminance to 0.18) shifted by a random
   number of stops; 1.0 after exposure is the sensor's clipping point;
2. sensor noise in linear light: Poisson-like shot noise plus Gaussian read noise;
3. a camera response: sRGB (IEC 61966-2-1), a pure gamma 1/1.8 … 1/2.6, or a filmic curve
   (highlight roll-off plus an S-shaped contrast, like in-camera rendering), then clipping;
   or, for some samples, one of the global tone-mapping operators the ExpandNet authors used for
   variety (Reinhard's photographic operator, Drago's adaptive logarithm), which compress rather
   than clip;
4. 8-bit quantisation;
5. a BT.709 Y'CbCr 8-bit limited-range 4:2:0 round trip (what every video file does);
6. JPEG compression artefacts (kornia's JPEG codec) at a random quality, for some samples.

:meth:`VirtualCamera.render` (what training uses) replaces steps 1–3 for a share of the samples
(``graded_prob``) by an SDR *grade*: the scene gets an HDR grade (:func:`~.grading.hdr_grade`:
diffuse white at 203 cd/m², highlights rolled off to a random mastering peak), and one of the SDR
renderings of :mod:`.grading` (BT.2446 A/C, filmic, knees, gamut clipping or compression, a
saturation boost that clips strong colours at mid luminance) makes the SDR from it, with a little
grain. For those samples the reference light is the HDR grade, not the scene: a clipped saturated
colour there is *not* light, and the network has to learn the difference.

Shapes: HDR in (B, 3, H, W) linear ≥ 0 (any scale; H, W multiples of 16 for JPEG);
SDR out (B, 3, H, W) display-encoded in [0, 1] on 8-bit steps; ``exposure`` (B,) such that
``hdr · exposure`` is linear light relative to the sensor's clipping point.
"""

from __future__ import annotations

from dataclasses import dataclass

import kornia
import torch

from .. import colour
from ..colour.ycbcr import chroma_downsample_420, chroma_upsample_420, dequantize, quantize, rgb_to_ycbcr, ycbcr_to_rgb
from .grading import RENDERINGS, hdr_grade, render_sdr

__all__ = ["CameraConfig", "VirtualCamera", "CURVES"]

CURVES = ("srgb", "gamma", "filmic", "reinhard", "drago")


@dataclass(frozen=True)
class CameraConfig:
    """Ranges the virtual camera draws from (uniformly unless said)."""

    exposure_stops: float = 1.5  # ± around auto-exposure
    shot_noise: float = 0.01  # max variance per unit linear signal
    read_noise: float = 0.004  # max standard deviation, linear
    gamma_range: tuple[float, float] = (1.8, 2.6)
    curve_weights: tuple[float, ...] = (0.3, 0.25, 0.3, 0.075, 0.075)  # srgb, gamma, filmic, reinhard, drago
    ycbcr420_prob: float = 0.8
    jpeg_prob: float = 0.5
    jpeg_quality: tuple[float, float] = (40.0, 95.0)
    graded_prob: float = 0.5  # share of samples (in render) made by an SDR grade instead of a camera
    grade_peak: tuple[float, float] = (600.0, 4000.0)  # HDR grade's mastering peak, cd/m²
    grade_key: tuple[float, float] = (0.10, 0.30)  # log-average luminance, × diffuse white
    saturation: tuple[float, float] = (1.15, 1.6)  # the "saturated" rendering's chroma boost
    grain: float = 1.5 / 255  # max grain σ on the graded SDR signal


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=device)


def auto_exposure(hdr: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) linear → (B,) factor that puts the log-average luminance at 0.18."""
    y = colour.luminance(hdr.float(), colour.LUMA_BT709).clamp(min=1e-6)
    return 0.18 / torch.exp(torch.log(y).flatten(1).mean(1))


def filmic(x: torch.Tensor, white: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
    """Filmic rendering of linear x ≥ 0 (1 = clip): extended Reinhard roll-off reaching 1 at
    ``white``, a 1/2.2 encoding, then an S-curve ``y^c / (y^c + (1 − y)^c)``. (B,) parameters."""
    w = white.view(-1, 1, 1, 1)
    c = contrast.view(-1, 1, 1, 1)
    r = (x * (1 + x / (w * w)) / (1 + x)).clamp(0, 1)
    y = r.pow(1 / 2.2)
    yc = y.pow(c)
    return yc / (yc + (1 - y).clamp(min=0).pow(c)).clamp(min=1e-6)


class VirtualCamera:
    """Draws and applies the degradations above; ``cfg`` sets their ranges."""

    def __init__(self, cfg: CameraConfig | None = None) -> None:
        self.cfg = cfg or CameraConfig()

    def __call__(
        self,
        hdr: torch.Tensor,
        gen: torch.Generator,
        curve: str | None = None,
        stops: torch.Tensor | None = None,
        group: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """HDR (B, 3, H, W) → (SDR signal (B, 3, H, W) in [0, 1], exposure (B,)).

        curve: force one response for every sample (evaluation), else drawn per sample.
        stops: (B,) exposure offsets from auto-exposure to use instead of random ones.
        group: consecutive samples that share one camera (the frames of a clip): the same
        exposure, response, chroma and JPEG settings, with independent noise.
        """
        sig, exposure = self._camera(hdr, gen, curve, stops, group)
        return self._video_chain(sig, gen, group), exposure

    def render(self, hdr: torch.Tensor, gen: torch.Generator, group: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Training inputs: HDR (B, 3, H, W) scene light → (SDR signal (B, 3, H, W) in [0, 1],
        reference (B, 3, H, W) linear BT.709 light the SDR was made from, any scale). Each group of
        ``group`` samples is either seen by the camera (reference: ``hdr · exposure``) or graded
        (reference: the HDR grade relative to 203 cd/m²; see the module doc)."""
        b, dev = hdr.shape[0], hdr.device
        n = b // group
        hdr = hdr.float()
        graded = (torch.rand(n, generator=gen, device=dev) < self.cfg.graded_prob).repeat_interleave(group)
        sig, exposure = self._camera(hdr, gen, None, None, group)
        ref = hdr * exposure.view(-1, 1, 1, 1)
        if graded.any():
            idx = graded.nonzero().flatten()
            g_sig, g_ref = self._graded(hdr[idx], gen, group)
            sig, ref = sig.index_copy(0, idx, g_sig), ref.index_copy(0, idx, g_ref)
        return self._video_chain(sig, gen, group), ref

    def _graded(self, hdr: torch.Tensor, gen: torch.Generator, group: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Scene light (b, 3, H, W) → (graded SDR signal before quantisation, HDR grade relative to
        203 cd/m², BT.709); one grade and rendering per group."""
        cfg, dev = self.cfg, hdr.device
        n = hdr.shape[0] // group

        def per_sample(t: torch.Tensor) -> torch.Tensor:
            return t.repeat_interleave(group, dim=0)

        peak = per_sample(_uniform(n, *cfg.grade_peak, gen, dev))
        key = per_sample(_uniform(n, *cfg.grade_key, gen, dev))
        kind = per_sample(torch.randint(len(RENDERINGS), (n,), generator=gen, device=dev))
        sat = _uniform(n, *cfg.saturation, gen, dev)
        grain = per_sample(_uniform(n, 0, cfg.grain, gen, dev)).view(-1, 1, 1, 1)
        y = colour.luminance(hdr, colour.LUMA_BT709).clamp(min=1e-6)
        logavg = per_sample(torch.exp(torch.log(y).flatten(1).mean(1)).view(n, group).mean(1))
        nits = hdr_grade(hdr, peak, key=1.0, logavg=logavg / key)
        sig = torch.empty_like(hdr)
        for i, name in enumerate(RENDERINGS):
            pick = (kind == i).nonzero().flatten()
            if len(pick):
                s = float(sat[pick[0] // group])
                sig[pick] = render_sdr(nits[pick], name, peak_nits=peak[pick], saturation=s)
        sig = sig + grain * torch.randn(sig.shape, generator=gen, device=dev)
        ref = colour.rgb_to_rgb(nits, colour.BT2020_TO_BT709).clamp(min=0) / colour.SDR_WHITE_NITS
        return sig.clamp(0, 1), ref

    def _camera(
        self, hdr: torch.Tensor, gen: torch.Generator, curve: str | None, stops: torch.Tensor | None, group: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps 1–3: exposure, noise, response → (signal before quantisation, exposure (B,))."""
        cfg = self.cfg
        b, dev = hdr.shape[0], hdr.device
        n = b // group

        def per_sample(t: torch.Tensor) -> torch.Tensor:
            return t.repeat_interleave(group, dim=0)

        hdr = hdr.float()
        if stops is None:
            stops = per_sample(_uniform(n, -cfg.exposure_stops, cfg.exposure_stops, gen, dev))
        ae = auto_exposure(hdr).view(n, group).mean(1)  # one exposure for a clip's frames
        exposure = per_sample(ae) * torch.exp2(stops.to(dev))
        x = hdr * exposure.view(-1, 1, 1, 1)
        x = self.add_noise(x, gen)
        if curve is None:
            w = torch.tensor(cfg.curve_weights, device=dev)
            kinds = per_sample(torch.multinomial(w, n, replacement=True, generator=gen))
        else:
            kinds = torch.full((b,), CURVES.index(curve), device=dev, dtype=torch.long)
        return self.respond(x, kinds, group, gen), exposure

    def _video_chain(self, sig: torch.Tensor, gen: torch.Generator, group: int) -> torch.Tensor:
        """Steps 4–6: 8 bits, the Y'CbCr 4:2:0 round trip and JPEG, each drawn per group."""
        cfg = self.cfg
        n, dev = sig.shape[0] // group, sig.device

        def per_sample(t: torch.Tensor) -> torch.Tensor:
            return t.repeat_interleave(group, dim=0)

        sig = torch.round(sig.clamp(0, 1) * 255) / 255
        use420 = per_sample(torch.rand(n, generator=gen, device=dev) < cfg.ycbcr420_prob)
        if use420.any():
            sig = torch.where(use420.view(-1, 1, 1, 1), ycbcr420_roundtrip(sig), sig)
        use_jpeg = per_sample(torch.rand(n, generator=gen, device=dev) < cfg.jpeg_prob)
        quality = per_sample(_uniform(n, *cfg.jpeg_quality, gen, dev))
        if use_jpeg.any():
            jpeg = kornia.enhance.jpeg_codec_differentiable(sig, quality)
            sig = torch.where(use_jpeg.view(-1, 1, 1, 1), torch.round(jpeg.clamp(0, 1) * 255) / 255, sig)
        return sig

    def add_noise(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Shot + read noise on linear x (B, 3, H, W), clipped at 0."""
        b, dev = x.shape[0], x.device
        shot = _uniform(b, 0, self.cfg.shot_noise, gen, dev).view(-1, 1, 1, 1)
        read = _uniform(b, 0, self.cfg.read_noise, gen, dev).view(-1, 1, 1, 1)
        std = torch.sqrt(shot * x.clamp(0, 1) + read * read)
        return (x + std * torch.randn(x.shape, generator=gen, device=dev)).clamp(min=0)

    def respond(self, x: torch.Tensor, kinds: torch.Tensor, group: int, gen: torch.Generator) -> torch.Tensor:
        """Camera response per sample (kinds index :data:`CURVES`): linear (B, 3, H, W) → signal;
        each group of ``group`` consecutive samples shares its curve parameters."""
        n, dev = x.shape[0] // group, x.device

        def per_sample(t: torch.Tensor) -> torch.Tensor:
            return t.repeat_interleave(group, dim=0)

        clipped = x.clamp(0, 1)
        gamma = per_sample(_uniform(n, *self.cfg.gamma_range, gen, dev)).view(-1, 1, 1, 1)
        white = per_sample(_uniform(n, 1.0, 4.0, gen, dev))
        contrast = per_sample(_uniform(n, 1.0, 1.6, gen, dev))
        key = per_sample(_uniform(n, 0.5, 2.0, gen, dev)).view(-1, 1, 1, 1)
        outs = (
            colour.srgb_inverse_eotf(clipped),
            clipped.pow(1 / gamma),
            filmic(x, white, contrast).clamp(0, 1),
            # Reinhard et al. 2002, global operator with the white point at the frame's maximum
            reinhard(x * key),
            drago(x),
        )
        out = outs[0]
        for i in range(1, len(outs)):
            out = torch.where((kinds == i).view(-1, 1, 1, 1), outs[i], out)
        return out


def reinhard(x: torch.Tensor) -> torch.Tensor:
    """Reinhard's global operator ``L(1 + L/L_white²)/(1 + L)`` on luminance, L_white = frame max,
    applied to RGB by the luminance ratio, then sRGB-encoded."""
    y = colour.luminance(x, colour.LUMA_BT709).clamp(min=1e-6)
    lw = y.flatten(1).amax(1).view(-1, 1, 1, 1).clamp(min=1.0)
    yd = y * (1 + y / (lw * lw)) / (1 + y)
    return colour.srgb_inverse_eotf((x * yd / y).clamp(0, 1))


def drago(x: torch.Tensor, bias: float = 0.85) -> torch.Tensor:
    """Drago et al. 2003 adaptive logarithmic mapping of luminance (bias 0.85), sRGB-encoded."""
    y = colour.luminance(x, colour.LUMA_BT709).clamp(min=1e-6)
    lmax = y.flatten(1).amax(1).view(-1, 1, 1, 1).clamp(min=1.0)
    b = torch.log(torch.tensor(bias)) / torch.log(torch.tensor(0.5))
    yd = torch.log1p(y) / torch.log1p(lmax) / torch.log(2 + 8 * (y / lmax).pow(b))
    yd = yd / (1 / torch.log(torch.tensor(10.0)))  # so that y = lmax maps to 1
    return colour.srgb_inverse_eotf((x * yd / y).clamp(0, 1))


def ycbcr420_roundtrip(sig: torch.Tensor) -> torch.Tensor:
    """R'G'B' (B, 3, H, W) → BT.709 8-bit limited Y'CbCr 4:2:0 → R'G'B', as a video file does."""
    codes = quantize(rgb_to_ycbcr(sig, "bt709"), bits=8, limited=True)
    ycc = dequantize(codes, bits=8, limited=True)
    chroma = chroma_upsample_420(chroma_downsample_420(ycc[:, 1:]))
    return ycbcr_to_rgb(torch.cat((ycc[:, :1], chroma), dim=1), "bt709").clamp(0, 1)
