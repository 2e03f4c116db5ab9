"""``hdrvideo info``: what a media file holds, with its colour tags and HDR10 metadata.

HDR10 static metadata is read from the side data of the first decoded frames (where x265 and
most encoders put it, as SEI messages), not from the container.
"""

from __future__ import annotations

import struct
from pathlib import Path

import av

from .decode import open_input
from .gainmap import read_gainmap_info

__all__ = ["describe", "format_description", "read_hdr10_metadata", "MADE_BY_TAG", "MADE_BY_FORMATS", "made_by"]

MADE_BY_TAG = "hdrvideo"
"""The container tag that says what made an output (:mod:`hdrvideo.pipeline.provenance`;
Matroska upper-cases it: ``HDRVIDEO``)."""
MADE_BY_FORMATS = ("matroska", "nut")
"""Containers that keep it (MP4 and MOV keep only their own keys)."""


def made_by(metadata: dict[str, str]) -> str | None:
    """The made-by line from a container's metadata (any case of the key), None where there is none."""
    return next((v for k, v in metadata.items() if k.lower() == MADE_BY_TAG), None)

_PRIMARIES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020", 12: "smpte432 (P3-D65)"}
_TRC = {
    1: "bt709",
    4: "gamma22",
    6: "smpte170m",
    8: "linear",
    13: "srgb",
    14: "bt2020-10",
    16: "smpte2084 (PQ)",
    18: "arib-std-b67 (HLG)",
}
_MATRIX = {0: "rgb", 1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc", 10: "bt2020c"}
_RANGE = {0: "unspecified", 1: "limited", 2: "full"}


def _name(table: dict[int, str], v) -> str:
    v = int(v or 2) if v is not None else 2
    return table.get(v, "unspecified" if v == 2 else str(v))


def _q(num: int, den: int) -> float:
    return num / den if den else 0.0


def read_hdr10_metadata(container: av.container.InputContainer, max_frames: int = 8) -> dict:
    """Mastering display and content light level from the first frames' side data (may be empty)."""
    out: dict = {}
    if not container.streams.video:
        return out
    try:
        for i, frame in enumerate(container.decode(video=0)):
            try:
                side_data = list(frame.side_data)
            except ValueError:  # a side-data type this PyAV does not know (a JPEG's ICC or XMP …)
                side_data = []
            for sd in side_data:
                raw = bytes(sd)
                name = str(sd.type).split(".")[-1]
                if name == "MASTERING_DISPLAY_METADATA" and len(raw) >= 88:
                    v = struct.unpack("<20i", raw[:80])  # AVMasteringDisplayMetadata: 10 AVRationals
                    prim = [(_q(v[2 * k], v[2 * k + 1])) for k in range(6)]
                    wp = (_q(v[12], v[13]), _q(v[14], v[15]))
                    out["mastering_display"] = {
                        "red": [round(prim[0], 4), round(prim[1], 4)],
                        "green": [round(prim[2], 4), round(prim[3], 4)],
                        "blue": [round(prim[4], 4), round(prim[5], 4)],
                        "white_point": [round(wp[0], 4), round(wp[1], 4)],
                        "min_luminance": round(_q(v[16], v[17]), 6),
                        "max_luminance": round(_q(v[18], v[19]), 4),
                    }
                elif name == "CONTENT_LIGHT_LEVEL" and len(raw) >= 8:
                    cll, fall = struct.unpack("<2I", raw[:8])
                    out["content_light_level"] = {"max_cll": cll, "max_fall": fall}
            if ("mastering_display" in out and "content_light_level" in out) or i + 1 >= max_frames:
                break
    except av.error.FFmpegError:
        pass
    return out


def describe(path: str | Path) -> dict:
    """A JSON-ready description of a media file."""
    path = Path(path)
    container = open_input(path)
    try:
        d: dict = {
            "file": str(path),
            "container": container.format.name,
            "duration_s": round(container.duration / 1e6, 3) if container.duration else None,
            "size_bytes": path.stat().st_size,
            "streams": [],
        }
        for s in container.streams:
            cc = s.codec_context
            e: dict = {"index": s.index, "type": s.type, "codec": cc.name if cc else None}
            if s.metadata.get("language"):
                e["language"] = s.metadata["language"]
            if s.type == "video":
                e.update(
                    width=cc.width,
                    height=cc.height,
                    pixel_format=cc.format.name if cc.format else None,
                    frame_rate=str(s.average_rate) if s.average_rate else None,
                    frames=s.frames or None,
                    color_primaries=_name(_PRIMARIES, cc.color_primaries),
                    color_transfer=_name(_TRC, cc.color_trc),
                    color_matrix=_name(_MATRIX, cc.colorspace),
                    color_range=_RANGE.get(int(cc.color_range or 0), "unspecified"),
                    codec_tag=cc.codec_tag or None,
                )
            elif s.type == "audio":
                e.update(sample_rate=cc.sample_rate, channels=cc.channels)
            d["streams"].append(e)
        d.update(read_hdr10_metadata(container))
        line = made_by(container.metadata)
        if line:
            d["made_by"] = line
        trc = next((x["color_transfer"] for x in d["streams"] if x["type"] == "video"), "")
        d["hdr"] = "HDR10 (PQ)" if "PQ" in trc else "HLG" if "HLG" in trc else "SDR"
        gm = read_gainmap_info(path) if path.suffix.lower() in (".jpg", ".jpeg") else None
        if gm is not None:
            d["gain_map"] = {
                "base_size": list(gm.base_size),
                "map_size": list(gm.map_size),
                "gain_log2": [round(gm.gain_min, 4), round(gm.gain_max, 4)],
                "hdr_capacity_log2": [round(gm.capacity_min, 4), round(gm.capacity_max, 4)],
                "headroom": round(gm.headroom, 3),
            }
            d["hdr"] = f"Ultra HDR (gain map, headroom ×{gm.headroom:.2f})"
        return d
    finally:
        container.close()


def format_description(d: dict) -> str:
    """The description as readable lines."""
    duration = "duration unknown" if d["duration_s"] is None else f"{d['duration_s']} s"
    lines = [f"{d['file']}: {d['container']}, {duration}, {d['size_bytes'] / 1e6:.2f} MB, {d['hdr']}"]
    for s in d["streams"]:
        if s["type"] == "video":
            lines.append(
                f"  #{s['index']} video: {s['codec']} {s['width']}×{s['height']} {s['pixel_format']}"
                f" {s['frame_rate']} fps, "
                + (f"{s['frames']} frames" if s["frames"] else "frame count not in the header")
            )
            lines.append(
                f"     colour: primaries {s['color_primaries']}, transfer {s['color_transfer']},"
                f" matrix {s['color_matrix']}, range {s['color_range']}"
            )
        else:
            extra = f" {s.get('sample_rate')} Hz {s.get('channels')} ch" if s["type"] == "audio" else ""
            lang = f" [{s['language']}]" if "language" in s else ""
            lines.append(f"  #{s['index']} {s['type']}: {s['codec']}{extra}{lang}")
    md = d.get("mastering_display")
    if md:
        lines.append(
            f"  mastering display: R{tuple(md['red'])} G{tuple(md['green'])} B{tuple(md['blue'])}"
            f" WP{tuple(md['white_point'])}, {md['min_luminance']}–{md['max_luminance']} cd/m²"
        )
    gm = d.get("gain_map")
    if gm:
        (bw, bh), (mw, mh) = gm["base_size"], gm["map_size"]
        lines.append(
            f"  gain map: {mw}×{mh} for a {bw}×{bh} SDR base; gain {gm['gain_log2'][0]}–{gm['gain_log2'][1]} stops, "
            f"full HDR at {gm['hdr_capacity_log2'][1]} stops of headroom (×{gm['headroom']} SDR white)"
        )
    cl = d.get("content_light_level")
    if cl:
        lines.append(f"  content light level: MaxCLL {cl['max_cll']} cd/m², MaxFALL {cl['max_fall']} cd/m²")
    if d.get("made_by"):
        lines.append(f"  made by: {d['made_by']}")
    return "\n".join(lines)
