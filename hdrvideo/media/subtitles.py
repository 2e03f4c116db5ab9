"""Text subtitles into MP4 and MOV: they hold no SRT, ASS or WebVTT, only ``mov_text`` (3GPP
timed text), so cues are decoded and encoded again (PyAV's subtitle encoder), with their times,
text and language."""

from __future__ import annotations

import av

__all__ = ["TEXT_SUBTITLES", "DEFAULT_ASS_HEADER", "add_mov_text", "to_mov_text"]

TEXT_SUBTITLES = ("subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text")
"""Subtitle decoders whose cues are text (carried into MP4/MOV as mov_text)."""

DEFAULT_ASS_HEADER = (
    b"[Script Info]\r\nScriptType: v4.00+\r\nPlayResX: 384\r\nPlayResY: 288\r\n\r\n[V4+ Styles]\r\n"
    b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
    b"Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, "
    b"MarginR, MarginV, Encoding\r\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,"
    b"10,10,10,0\r\n\r\n[Events]\r\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\r\n"
)
"""The ASS header FFmpeg gives text subtitles that have none (its default style), for mov_text."""


def add_mov_text(container: av.container.OutputContainer, in_stream: av.stream.Stream) -> av.stream.Stream | None:
    """A mov_text output stream for a text subtitle ``in_stream`` (None: bitmap subtitles, or
    the encoder refused)."""
    src = in_stream.codec_context
    if src is None or src.name not in TEXT_SUBTITLES:
        return None
    try:
        out = container.add_stream("mov_text")
        out.codec_context.time_base = in_stream.time_base
        # mov_text styles its text from an ASS header; SRT and WebVTT decoders bring none
        out.codec_context.subtitle_header = src.subtitle_header or DEFAULT_ASS_HEADER
    except (av.error.FFmpegError, ValueError, TypeError):
        return None
    for k in ("language", "title"):
        if k in in_stream.metadata:
            out.metadata[k] = in_stream.metadata[k]
    return out


def to_mov_text(packet: av.Packet, in_stream: av.stream.Stream, out: av.stream.Stream) -> av.Packet | None:
    """A text subtitle packet decoded and encoded again as mov_text (None: nothing to show)."""
    try:
        subs = in_stream.decode2(packet)
        if subs is None:
            return None
        new = out.codec_context.encode_subtitle(subs)
    except av.error.FFmpegError:
        return None  # a damaged cue is skipped, as a player would
    new.stream = out
    new.time_base = in_stream.time_base
    new.pts, new.dts, new.duration = packet.pts, packet.dts, packet.duration
    return new
