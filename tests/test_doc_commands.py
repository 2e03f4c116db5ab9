"""The README's and the docs' commands, as ``scripts/doc_commands.py`` reads them (issue 26): every
one is found, runs a program this project ships or names, and is either run or skipped for a
stated reason. Running them all takes minutes (the script does that); a few quick ones run here."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("doc_commands", ROOT / "scripts" / "doc_commands.py")
doc_commands = importlib.util.module_from_spec(spec)
sys.modules["doc_commands"] = doc_commands  # its dataclass looks its module up
spec.loader.exec_module(doc_commands)


def test_every_block_is_read_and_every_command_is_accounted_for():
    cmds = doc_commands.commands()
    pages = {c.page for c in cmds}
    assert {"README.md", "docs/convert.md", "docs/stream.md", "docs/batch.md", "docs/train-and-evaluate.md"} <= pages
    for c in cmds:
        program = c.text.split()[0]
        assert program in {"hdrvideo", "python", "pip", "ffmpeg", "torchrun"}, c
        expect = doc_commands.expectation(c)
        if "..." in c.text:  # an abbreviation only where the script may not expand it: a skipped line
            assert expect is not None and expect[0] == "skip", c
        assert "\\" not in c.text, c  # continuation lines joined
    readme = [c.text for c in cmds if c.page == "README.md"]
    for command in ("convert", "stream", "batch", "train", "eval"):
        assert any(t.startswith(f"hdrvideo {command} ") for t in readme), command


def test_an_abbreviated_command_takes_the_options_of_the_first_of_its_kind(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("```bash\nhdrvideo train --data a --data b --out runs/x\nhdrvideo train ... --out runs/y --resume\n```\n")
    cmds = doc_commands.commands([page])
    assert [c.text for c in cmds] == ["hdrvideo train --data a --data b --out runs/x",
                                      "hdrvideo train --data a --data b --out runs/y --resume"]  # fmt: skip


@pytest.mark.skipif(not (ROOT.parent / "shared").is_dir(), reason="needs ../shared (the docs' data)")
def test_some_commands_run_as_written(tmp_path):
    work = tmp_path / "work"
    doc_commands.prepare(work)
    quick = [c for c in doc_commands.commands() if c.text.startswith(("hdrvideo convert in.mp4 out_c.mkv",
                                                                        "hdrvideo stream -i /dev/video0 -o"))]  # fmt: skip
    if shutil.which("ffmpeg"):
        quick += [c for c in doc_commands.commands() if c.text.startswith("ffmpeg -i in.mov -f nut -")]
    assert quick
    for c in quick:
        ok, what = doc_commands.run(c, work, limit=120)
        assert ok, f"{c}: {what}"
