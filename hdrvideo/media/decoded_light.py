"""The light a decoder shows: MaxCLL measured on the encoder's own output, not on its input.

A lossy encoder rings at sharp edges of saturated colour: chroma overshoots, and a player that
converts the decoded 10-bit Y′CbCr back to RGB shows channels above anything the processor
wrote (at ``--peak-nits 300``, stripes of saturated colour decode to 337–372 cd/m² against a
measured 300). CTA-861.3's MaxCLL must describe what is shown, so the writer hands every video
packet it muxes to :class:`DecodedLight`, which decodes it in a thread of its own and finds the
largest R′, G′ or B′ a player shows (BT.2020 non-constant luminance, ITU-R BT.2020-2:
R′ = Y′ + 1.4746 Cr, B′ = Y′ + 1.8814 Cb, G′ = Y′ − 0.16455 Cb − 0.57135 Cr) under the two
chroma up-samplings players and FFmpeg's swscale use: nearest (a pixel takes its own 4:2:0
sample), linear from left-sited samples (as :func:`~hdrvideo.colour.ycbcr.chroma_upsample_420`)
and bilinear from centre-sited ones. Only blocks whose quick bound (the block's
largest Y′ with the extremes of the 3×3 chroma around it) could beat the largest value so far
are computed exactly, so after the first bright frame a frame costs a few passes at chroma
resolution. The largest code goes through the SMPTE ST 2084 EOTF once, at the end.
"""

from __future__ import annotations

import queue
import threading

import av
import numpy as np

__all__ = ["DecodedLight", "file_peak_nits", "frame_peak_signal"]

# ITU-R BT.2020-2 non-constant luminance: Kr 0.2627, Kb 0.0593, Kg 0.6780
_CR_TO_R = 2 * (1 - 0.2627)
_CB_TO_B = 2 * (1 - 0.0593)
_CB_TO_G = 2 * 0.0593 * (1 - 0.0593) / 0.6780
_CR_TO_G = 2 * 0.2627 * (1 - 0.2627) / 0.6780
_DECODERS = {"hevc": "hevc", "av1": "libdav1d", "hevc_nvenc": "hevc", "av1_nvenc": "libdav1d"}


def _plane(frame: av.VideoFrame, i: int) -> np.ndarray:
    p = frame.planes[i]
    return np.frombuffer(p, dtype=np.uint16).reshape(p.height, p.line_size // 2)[:, : p.width]


def _neighbourhood(c: np.ndarray, pick) -> np.ndarray:
    """3×3 max (``pick=np.maximum``) or min (``np.minimum``) of a 2-D array, edges replicated."""
    p = np.pad(c, 1, mode="edge")
    rows = pick(pick(p[:-2], p[1:-1]), p[2:])
    return pick(pick(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])


def _rgb_max(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """max(R′, G′, B′) of Y′CbCr (Y′ in [0, 1], Cb, Cr centred), BT.2020 non-constant luminance."""
    rb = np.maximum(y + _CR_TO_R * cr, y + _CB_TO_B * cb)
    return np.maximum(rb, y - _CB_TO_G * cb - _CR_TO_G * cr)


def _chroma_at(c: np.ndarray, ii: np.ndarray, jj: np.ndarray) -> dict[tuple[int, int], list[np.ndarray]]:
    """Chroma (float, centred) at the four pixels (a, b) of blocks (ii, jj), under each
    up-sampling a player may use: its own sample (nearest), linear from left-sited samples
    (MPEG-2, BT.2020's siting, as :func:`~hdrvideo.colour.ycbcr.chroma_upsample_420`), and
    bilinear from centre-sited samples (JPEG siting: swscale's choice where none is tagged)."""
    h, w = c.shape
    rows = (np.maximum(ii - 1, 0), np.minimum(ii + 1, h - 1))  # the row above (a = 0), below (a = 1)
    cols = (np.maximum(jj - 1, 0), np.minimum(jj + 1, w - 1))  # the column left (b = 0), right (b = 1)
    own = c[ii, jj]
    out = {}
    for a in (0, 1):
        vert = 0.75 * own + 0.25 * c[rows[a], jj]
        vert_next = 0.75 * c[ii, cols[1]] + 0.25 * c[rows[a], cols[1]]
        for b in (0, 1):
            left = vert if b == 0 else 0.5 * (vert + vert_next)
            side = c[ii, cols[b]]
            centre = 0.5625 * own + 0.1875 * (c[rows[a], jj] + side) + 0.0625 * c[rows[a], cols[b]]
            out[a, b] = [own, left, centre]
    return out


def frame_peak_signal(frame: av.VideoFrame, floor: float = 0.0) -> float:
    """The largest R′, G′ or B′ (a display signal in [0, 1]: PQ or HLG as the stream says) a
    player shows of a decoded 10-bit 4:2:0 limited-range frame, or ``floor`` where nothing in
    it can exceed ``floor``."""
    y, cb, cr = (_plane(frame, i).astype(np.float32) for i in range(3))
    h, w = cb.shape
    y = (y[: 2 * h, : 2 * w] - 64) * np.float32(1 / 876)
    quads = [[y[0::2, 0::2], y[0::2, 1::2]], [y[1::2, 0::2], y[1::2, 1::2]]]
    y_max = np.maximum(np.maximum(quads[0][0], quads[0][1]), np.maximum(quads[1][0], quads[1][1]))
    cb, cr = (cb - 512) * np.float32(1 / 896), (cr - 512) * np.float32(1 / 896)
    # nearest, each pixel its own sample: exact per block, and a floor for the rest
    floor = max(floor, float(_rgb_max(y_max, cb, cr).max()))
    # linear up-samplings mix the 3×3 samples around: only blocks whose bound beats the floor
    bound = y_max + np.maximum(
        np.maximum(_CR_TO_R * _neighbourhood(cr, np.maximum), _CB_TO_B * _neighbourhood(cb, np.maximum)),
        -_CB_TO_G * _neighbourhood(cb, np.minimum) - _CR_TO_G * _neighbourhood(cr, np.minimum),
    )
    ii, jj = np.nonzero(bound > floor)
    if ii.size == 0:
        return min(1.0, floor)
    cbs, crs = _chroma_at(cb, ii, jj), _chroma_at(cr, ii, jj)
    best = floor
    for (a, b), cb_options in cbs.items():
        yp = quads[a][b][ii, jj]
        for cb_k, cr_k in zip(cb_options[1:], crs[a, b][1:], strict=True):  # [0], own: done above
            best = max(best, float(_rgb_max(yp, cb_k, cr_k).max()))
    return min(1.0, best)


def _pq_nits(signal: float) -> float:
    import torch  # here only: the media modules load without torch (start-up checks)

    from ..colour.transfer import pq_eotf

    return float(pq_eotf(torch.tensor(signal, dtype=torch.float64)))


class DecodedLight:
    """Decodes a video stream's packets as they are muxed and keeps the brightest channel shown.

    ``feed(packet)`` before the packet is muxed (the muxer takes its data); ``close()`` returns
    the MaxCLL in cd/m² (PQ streams), or None where the codec has no decoder here.
    """

    def __init__(self, codec: str) -> None:
        self.signal = 0.0
        self.frames = 0
        self._stopped = False
        self._error: BaseException | None = None
        try:
            self._ctx = av.CodecContext.create(_DECODERS[codec], "r")
        except (KeyError, av.error.FFmpegError, ValueError):
            self._ctx = None
            return
        self._ctx.thread_type = "AUTO"
        self._queue: queue.Queue = queue.Queue(maxsize=64)
        self._thread = threading.Thread(target=self._run, daemon=True, name="decoded-light")
        self._thread.start()

    def feed(self, packet: av.Packet, extradata: bytes | None = None) -> None:
        """Queue one packet; ``extradata`` (the encoder's parameter sets) is taken before the first."""
        if self._ctx is None or self._error is not None or self._stopped:
            return
        if self.frames == 0 and self._queue.empty() and extradata and not self._ctx.extradata:
            self._ctx.extradata = extradata
        self._queue.put(bytes(packet))

    def _run(self) -> None:
        while True:
            data = self._queue.get()
            if self._stopped and data is not None:
                continue
            try:
                for frame in self._ctx.decode(av.Packet(data) if data is not None else None):
                    self.signal = frame_peak_signal(frame, self.signal)
                    self.frames += 1
            except Exception as e:  # noqa: BLE001 - reported by close(); the encode goes on
                self._error = e
            if data is None:
                return

    def close(self) -> float | None:
        """Flush the decoder and return MaxCLL (cd/m²) of what it decoded, None if it could not."""
        if self._ctx is None:
            return None
        self._queue.put(None)
        self._thread.join()
        if self._error is not None or self.frames == 0:
            return None
        return _pq_nits(self.signal)

    def stop(self) -> None:
        """Drop what is queued and end the thread (the output is being abandoned)."""
        if self._ctx is not None and not self._stopped:
            self._stopped = True
            self._queue.put(None)


def file_peak_nits(path: str) -> float | None:
    """MaxCLL (cd/m²) of what a decoder shows of a finished PQ file's video (the ``--encoder
    ffmpeg`` path, whose packets this process never sees); None where it cannot be decoded."""
    signal, frames = 0.0, 0
    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in c.decode(stream):
                if frame.format.name != "yuv420p10le":
                    return None
                signal = frame_peak_signal(frame, signal)
                frames += 1
    except (av.error.FFmpegError, IndexError):
        return None
    return _pq_nits(signal) if frames else None
