"""Issue 27 #12: ``-`` as input or output, as ffmpeg pipelines use it:
``ffmpeg -i x -f nut - | hdrvideo convert - out.mkv`` and ``hdrvideo convert in.mp4 - -f matroska | mpv -``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import av
import pytest

from hdrvideo.media.info import describe
from tests.media import make_clip

ENV = {**os.environ, "HDRVIDEO_COMPILE": "off"}


def _hdrvideo(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hdrvideo", *map(str, args)], env=ENV, **kw)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("pipes") / "in.mp4", 160, 90, frames=12)


def test_standard_input(tmp_path, clip, tiny_weights):
    """A NUT stream (what ffmpeg writes to a pipe) read from standard input, audio carried."""
    nut = tmp_path / "in.nut"
    with av.open(str(clip)) as src, av.open(str(nut), "w", format="nut") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    dst = tmp_path / "o.mkv"
    with open(nut, "rb") as stdin:
        p = _hdrvideo("convert", "-", dst, "--weights", tiny_weights, stdin=stdin, stderr=subprocess.PIPE, text=True)
        _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert "wrote" in err and "standard input" not in err.split("wrote")[-1]
    d = describe(dst)
    assert d["hdr"] == "HDR10 (PQ)" and d["content_light_level"]["max_cll"] > 0
    with av.open(str(dst)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 12 and c.streams.audio


@pytest.mark.parametrize("fmt", ["matroska", "mp4", "mpegts", "nut"])
def test_standard_output(tmp_path, clip, tiny_weights, fmt):
    """Written front to back into a pipe: every frame, the HDR tags, light levels signalled as
    unknown (0, CTA-861.3: nothing can be patched afterwards), and a message on stderr only."""
    p = _hdrvideo("convert", clip, "-", "-f", fmt, "--weights", tiny_weights, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)  # fmt: skip
    data, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    assert b"wrote standard output" in err and b"unknown" in err
    out = tmp_path / f"piped.{fmt}"
    out.write_bytes(data)
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert v.codec_context.color_trc == 16 and v.codec_context.color_primaries == 9
        assert sum(1 for _ in c.decode(v)) == 12


def test_a_reader_that_goes_away_is_one_line(tmp_path, tiny_weights):
    """``… | head -c 1000``: the pipe breaks; one line, a non-zero exit, no traceback."""
    clip = make_clip(tmp_path / "long.mp4", 320, 180, frames=120, audio=False)
    p = _hdrvideo("convert", clip, "-", "--weights", tiny_weights, "-q", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.read(1000)
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    assert p.returncode == 1, err
    assert err.strip().splitlines() == [
        "hdrvideo: error: the output pipe was closed by its reader (broken pipe); output incomplete"
    ]


def test_pipe_misuse_is_one_line(tmp_path, clip, tiny_weights):
    cases = [
        (("convert", "-", tmp_path / "o.mkv"), b"not a media stream", "not a readable media stream on standard input"),
        (("convert", "-", tmp_path / "o.mkv", "--preview", tmp_path / "p.png"), b"", "--preview reads the input"),
        (("convert", clip, "-", "-f", "avi"), b"", "Invalid value for '-f' / '--format'"),
    ]
    for args, stdin, message in cases:
        p = _hdrvideo(*args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=False)
        _, err = p.communicate(stdin, timeout=60)
        assert p.returncode != 0 and message in err.decode(), (args, err)
        assert b"Traceback" not in err
    assert not (tmp_path / "o.mkv").exists()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program")
def test_an_ffmpeg_pipeline_as_written(tmp_path, clip, tiny_weights):
    """The two pipelines of docs/convert.md, through a shell."""
    dst = tmp_path / "o.mkv"
    cmd = (f"ffmpeg -v error -i {clip} -f nut - | {sys.executable} -m hdrvideo convert - {dst} -q "
           f"--weights {tiny_weights} && {sys.executable} -m hdrvideo convert {dst} - --force -q "
           f"--weights {tiny_weights} | ffprobe -v error -count_frames -select_streams v "
           "-show_entries stream=nb_read_frames,color_transfer -of csv=p=0 -")  # fmt: skip
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], env=ENV, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "smpte2084,12", r.stdout
