"""Run every command of the README and the docs as written, on small inputs made here.

    python scripts/doc_commands.py                 # all of them (about 5 minutes on 2 cores)
    python scripts/doc_commands.py --list          # what would run, and what is skipped and why
    python scripts/doc_commands.py --only stream   # those whose text contains "stream"

Every line of every ```bash block in README.md and docs/*.md is a command (continuation lines
joined, trailing comments dropped). They run in a scratch folder laid out as the docs assume:
``in.mp4``, ``in.mov``, ``a.mp4``, ``b.mov``, ``photo.jpg``, ``list.txt``, ``catalogue/``,
``hdr-images/`` (small clips and a photo made on the spot, the shared HDR scenes linked), one
folder per page (a reader starts each page afresh),
``models/``, ``weights.pth`` (the authors' weights) and ``../shared`` beside it. A ``...`` in a
block stands for the options of the first command of the same kind in that block, and is
replaced by them, as a reader would.

A command passes when it exits 0; one that is still running without error after ``--limit``
seconds (training, evaluation on the full data) passes as started and is stopped with SIGINT.
What cannot run on a CI machine is listed in :data:`EXPECT` with the reason, and either runs
with the one-line answer it must give there (no camera, no Ray cluster) or is skipped (setting
up, the test suite itself, four GPUs). Exit status 1 if any command failed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# (pattern in the command, what to do: "skip" or the line its stderr must hold, why)
EXPECT = [
    (r"^pip install", "skip", "setting up: .ci/run installs from nothing on every CI run"),
    (r"^python -m pytest", "skip", "the test suite itself: CI runs it"),
    (r"^torchrun --nproc-per-node 4", "skip", "four processes of full training; tests/test_train.py runs DDP"),
    (r"/dev/video0", "camera not found", "no camera on this machine: the one-line answer is the check"),
    (r"--ray-address auto", "ray", "no Ray cluster here: the one-line answer is the check"),
]
LIMITS = {r"pack_aces_pairs\.py": 900.0}
"""Commands that must run to their end, however long (a later command reads what they write)."""
SUBSTITUTE = [(r"\| ffplay -$", "| ffprobe -v error -", "no screen: ffprobe reads the pipe instead of ffplay")]


@dataclass
class Command:
    page: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


def commands(pages: list[Path] = PAGES) -> list[Command]:
    """Every command of the bash blocks of ``pages``, continuation lines joined, comments dropped,
    ``...`` expanded from the block's first command of the same kind."""
    out = []
    for page in pages:
        lines = page.read_text().splitlines()
        block: list[Command] | None = None
        pending = ""
        for i, line in enumerate(lines, 1):
            if line.strip().startswith("```"):
                block = [] if block is None and line.strip() in ("```bash", "```sh") else None
                continue
            if block is None:
                continue
            text = re.sub(r"\s+#\s.*$", "", line).rstrip()
            if text.endswith("\\"):
                pending += text[:-1].strip() + " "
                continue
            text = (pending + text.strip()).strip()
            pending = ""
            if not text or text.startswith("#"):
                continue
            if " ... " in f"{text} ":
                kind = " ".join(text.split()[:2])
                first = next((c.text for c in block if c.text.startswith(kind) and "..." not in c.text), None)
                if first is not None:
                    rest = re.sub(r"\s--out\s+\S+", "", first[len(kind) :])
                    text = text.replace("...", rest.strip(), 1)
            cmd = Command(str(page.relative_to(ROOT) if page.is_relative_to(ROOT) else page.name), i, text)
            block.append(cmd)
            out.append(cmd)
    return out


def expectation(cmd: Command) -> tuple[str, str] | None:
    """("skip" or a line stderr must hold, why), or None: it must succeed."""
    return next(((what, why) for pat, what, why in EXPECT if re.search(pat, cmd.text)), None)


def prepare(work: Path) -> None:
    """The scratch folder the docs assume (see the module doc)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import cv2
    import numpy as np

    from tests.media import make_clip, sdr_frame

    work.mkdir(parents=True)
    if SHARED.is_dir():
        (work.parent / "shared").symlink_to(SHARED)
        (work / "weights.pth").symlink_to(SHARED / "reference" / "expandnet" / "weights.pth")
        (work / "hdr-images").symlink_to(SHARED / "data" / "hdr-images")
    (work / "models").symlink_to(ROOT / "models")
    (work / "scripts").symlink_to(ROOT / "scripts")
    make_clip(work / "in.mp4", 320, 180, frames=24)
    make_clip(work / "in.mov", 320, 180, frames=24)
    make_clip(work / "a.mp4", 160, 90, frames=12)
    make_clip(work / "b.mov", 160, 90, frames=12)
    (work / "catalogue").mkdir()
    make_clip(work / "catalogue" / "one.mp4", 160, 90, frames=12)
    make_clip(work / "catalogue" / "two.mkv", 160, 90, frames=12)
    (work / "list.txt").write_text("a.mp4\nb.mov\n")
    cv2.imwrite(str(work / "photo.jpg"), cv2.cvtColor(sdr_frame(3, 480, 320), cv2.COLOR_RGB2BGR))
    assert np is not None


def run(cmd: Command, work: Path, limit: float) -> tuple[bool, str]:
    """→ (passed, what happened)."""
    text, notes = cmd.text, []
    for pat, repl, why in SUBSTITUTE:
        if re.search(pat, text):
            text = re.sub(pat, repl, text)
            notes.append(why)
    expect = expectation(cmd)
    if expect and expect[0] == "skip":
        return True, f"skipped: {expect[1]}"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    t0 = time.monotonic()
    p = subprocess.Popen(["bash", "-o", "pipefail", "-c", text], cwd=work, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        limit = next((v for pat, v in LIMITS.items() if re.search(pat, text)), limit)
        _, err = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGINT)
        try:
            _, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            _, err = p.communicate()
        if "Traceback" in err or "error:" in err:
            return False, f"failed within {limit:.0f} s: {_tail(err)}"
        return True, f"started, ran {limit:.0f} s without error, stopped" + (f" ({'; '.join(notes)})" if notes else "")
    seconds = time.monotonic() - t0
    if expect:  # must fail with its one line, not a traceback
        ok = p.returncode != 0 and expect[0].lower() in err.lower() and "Traceback" not in err
        return ok, f"{'answered' if ok else 'FAILED'} in {seconds:.1f} s: {_tail(err)} ({expect[1]})"
    if p.returncode != 0:
        return False, f"exit {p.returncode} in {seconds:.1f} s: {_tail(err)}"
    return True, f"ok in {seconds:.1f} s" + (f" ({'; '.join(notes)})" if notes else "")


def _tail(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and "frame/s]" not in ln]
    return lines[-1][:200] if lines else "(nothing on stderr)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="list the commands and what is expected of each")
    ap.add_argument("--only", help="run only the commands containing this text")
    ap.add_argument("--limit", type=float, default=90, help="seconds after which a running command counts as started")
    a = ap.parse_args()
    todo = [c for c in commands() if not a.only or a.only in c.text]
    if a.list:
        for c in todo:
            e = expectation(c)
            print(f"{c}\n    → {'must succeed' if e is None else ('skipped: ' if e[0] == 'skip' else 'one line: ') + e[1]}")
        return 0
    failed = 0
    for page in dict.fromkeys(c.page for c in todo):  # each page in a scratch folder of its own, as a reader starts
        scratch = Path(tempfile.mkdtemp(prefix="hdrvideo-docs-"))
        try:
            prepare(scratch / "work")
            for c in (c for c in todo if c.page == page):
                ok, what = run(c, scratch / "work", a.limit)
                failed += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {c}\n     {what}", flush=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"{len(todo) - failed} of {len(todo)} commands as written: passed" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
