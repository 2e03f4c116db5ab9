"""What made an output (pipeline/provenance.py): written where the container keeps it, read back
by ``hdrvideo info``; MP4 keeps its title and comment untouched."""

from __future__ import annotations

import json
import shutil

import av
import pytest
from click.testing import CliRunner

from hdrvideo.cli import main
from hdrvideo.pipeline.processor import FrameProcessor
from hdrvideo.pipeline.provenance import describe
from tests.media import make_clip


@pytest.fixture(scope="module")
def titled_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("prov") / "in.mp4"
    make_clip(path, 64, 48, frames=4)
    tagged = path.with_name("titled.mp4")
    with av.open(str(path)) as src, av.open(str(tagged), "w") as dst:
        dst.metadata.update({"title": "Reel 3", "comment": "from the vault"})
        s = dst.add_stream_from_template(src.streams.video[0])
        for pkt in src.demux(src.streams.video[0]):
            if pkt.dts is not None:
                pkt.stream = s
                dst.mux(pkt)
    return tagged


def _info(path) -> dict:
    r = CliRunner().invoke(main, ["info", "--json", str(path)])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_the_output_says_what_made_it_where_the_container_keeps_it(tmp_path, titled_clip, tiny_weights):
    common = ["--weights", str(tiny_weights), "--compile", "off", "--quality", "fast", "--preset", "ultrafast", "-q"]
    mkv, mp4 = tmp_path / "o.mkv", tmp_path / "o.mp4"
    r = CliRunner().invoke(main, ["convert", str(titled_clip), str(mkv), "--look", "aces", "--strength", "0.5", *common])
    assert r.exit_code == 0, r.output
    d = _info(mkv)
    assert d["made_by"].startswith("hdrvideo ") and tiny_weights.name in d["made_by"]
    assert "look aces" in d["made_by"] and "strength 0.5" in d["made_by"] and "PQ 1000 cd/m²" in d["made_by"]
    assert "network at 480 px" in d["made_by"]
    r = CliRunner().invoke(main, ["info", str(mkv)])
    assert "  made by: hdrvideo " in r.output
    with av.open(str(mkv)) as c:
        assert c.metadata["title"] == "Reel 3"
    r = CliRunner().invoke(main, ["convert", str(titled_clip), str(mp4), *common])
    assert r.exit_code == 0, r.output
    assert "made_by" not in _info(mp4)  # MP4 keeps only its own keys
    with av.open(str(mp4)) as c:  # and the title and comment stay where players read them
        assert c.metadata["title"] == "Reel 3" and c.metadata["comment"] == "from the vault"


def test_the_line_names_a_formula_or_bt2408_alone(tiny_model):
    assert "method bt2446c" in describe(FrameProcessor(None, "pq", method="bt2446c"))
    assert "look" not in describe(FrameProcessor(None, "pq", method="bt2446c"))
    line = describe(FrameProcessor(None, "hlg", 600.0, look="aces"))
    assert "BT.2408 alone (no expansion)" in line and "look aces" in line and line.endswith("HLG 600 cd/m²")
    assert "ExpandNet, full resolution, look bt2408, strength 1" in describe(FrameProcessor(tiny_model, "pq"))


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg program on PATH (CI installs Debian's)")
def test_a_system_ffmpeg_writes_the_title_and_the_made_by_line_too(tmp_path, titled_clip, tiny_weights):
    """-metadata is an output option: given before the inputs, ffmpeg dropped the title (a bug
    until 2026-12-06) and would have dropped the made-by line."""
    out = tmp_path / "o.mkv"
    r = CliRunner().invoke(main, ["convert", str(titled_clip), str(out), "--encoder", "ffmpeg", "--weights",
                                  str(tiny_weights), "--compile", "off", "--quality", "fast", "-q"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "look bt2408" in _info(out)["made_by"]
    with av.open(str(out)) as c:
        assert c.metadata["title"] == "Reel 3"
