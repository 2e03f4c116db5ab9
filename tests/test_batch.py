"""`hdrvideo batch`: inputs and outputs, idempotent reruns, damaged files, workers killed mid-file,
locally and on a local Ray instance (2 CPUs)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import av
import pytest
from click.testing import CliRunner

from hdrvideo.cli import main
from hdrvideo.commands.batch import BatchError, collect_inputs, is_complete, plan_jobs, run_batch
from hdrvideo.pipeline.settings import ConversionSettings
from tests.media import make_clip


@pytest.fixture
def weights(tiny_weights) -> Path:
    return tiny_weights


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Two good clips and a damaged one (an MP4 header followed by garbage)."""
    d = tmp_path_factory.mktemp("in")
    make_clip(d / "a.mp4", 160, 90, frames=12)
    make_clip(d / "b.mp4", 160, 90, frames=18)
    (d / "c.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    return d


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """Long enough (several seconds of work) for a worker to be killed in the middle of it."""
    return make_clip(tmp_path_factory.mktemp("long") / "long.mp4", 320, 180, frames=240, audio=False)


def opts(weights: Path) -> ConversionSettings:
    return ConversionSettings(weights=str(weights), device="cpu", quality="fast", preset="ultrafast", threads=1)


def is_hdr(path: Path) -> bool:
    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        return (cc.color_primaries, cc.color_trc) == (9, 16) and sum(1 for _ in c.decode(video=0)) > 0


def kill_the_writer_of(partial: Path, stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL whichever process has ``partial`` open for writing, once (an outside kill, as by the
    OOM killer: the worker gets no chance to clean up)."""
    target = str(partial)
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
                if any(os.readlink(f"/proc/{pid}/fd/{fd}") == target for fd in fds):
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
                    return
            except OSError:
                continue
        time.sleep(0.02)


def test_inputs_from_files_folders_and_manifests(tmp_path, clips):
    (tmp_path / "sub").mkdir()
    make_clip(tmp_path / "sub" / "d.mov", 64, 36, frames=2, audio=False)
    (tmp_path / "notes.md").write_text("not a video")
    manifest = tmp_path / "list.txt"
    manifest.write_text(f"# the catalogue\n{clips / 'a.mp4'}\n\nsub/d.mov\n")
    found = collect_inputs([str(manifest), str(clips / "a.mp4"), str(tmp_path)])
    names = [p.name for p, _ in found]
    assert names == ["a.mp4", "d.mov"]  # repeats removed, order kept, non-video files ignored
    jobs = plan_jobs(collect_inputs([str(tmp_path)]), tmp_path / "out")
    assert [Path(j.output).relative_to(tmp_path / "out").as_posix() for j in jobs] == ["sub/d.mkv"]
    (tmp_path / "x").mkdir()
    make_clip(tmp_path / "x" / "a.mp4", 64, 36, frames=2, audio=False)
    with pytest.raises(BatchError, match="would both be written"):
        plan_jobs(collect_inputs([str(clips / "a.mp4"), str(tmp_path / "x" / "a.mp4")]), tmp_path / "out")


def test_an_output_folder_inside_the_input_folder_is_not_an_input(tmp_path):
    """Issue 27: `batch DIR -o DIR/hdr` run twice took its own outputs as inputs ("already HDR",
    exit 1) and made DIR/hdr/hdr/."""
    d = tmp_path / "catalogue"
    for sub in ("hdr", "sub"):
        (d / sub).mkdir(parents=True)
    make_clip(d / "a.mp4", 64, 36, frames=2, audio=False)
    make_clip(d / "hdr" / "a.mkv", 64, 36, frames=2, audio=False)  # last run's output
    make_clip(d / "sub" / "b.mp4", 64, 36, frames=2, audio=False)
    found = [p.relative_to(d).as_posix() for p, _ in collect_inputs([d], skip=d / "hdr")]
    assert found == ["a.mp4", "sub/b.mp4"]
    assert len(collect_inputs([d])) == 3  # without skip, everything a folder holds


def test_local_batch_damaged_input_and_idempotent_rerun(tmp_path, clips, weights):
    out = tmp_path / "out"
    args = ["batch", str(clips), "-o", str(out), "--weights", str(weights), "--device", "cpu", "--quality", "fast",
            "--preset", "ultrafast", "--workers", "2", "--threads", "1", "-q"]  # fmt: skip
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1, r.output  # one file failed
    report = json.loads((out / "hdrvideo-batch-report.json").read_text())
    status = {Path(f["input"]).name: f for f in report["files"]}
    assert {k: v["status"] for k, v in status.items()} == {"a.mp4": "ok", "b.mp4": "ok", "c.mp4": "failed"}
    assert "not a readable media file" in status["c.mp4"]["error"]
    assert status["a.mp4"]["frames"] == 12 and status["b.mp4"]["frames"] == 18
    assert report["workers"] == 2 and report["frames"] == 30
    assert is_hdr(out / "a.mkv") and is_hdr(out / "b.mkv")
    assert not (out / "c.mkv").exists() and not list(out.glob(".*partial*"))
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*.mkv")}
    r = CliRunner().invoke(main, args)
    report = json.loads((out / "hdrvideo-batch-report.json").read_text())
    assert [f["status"] for f in report["files"]] == ["skipped", "skipped", "failed"]
    assert report["frames"] == 0 and {p: p.stat().st_mtime_ns for p in out.glob("*.mkv")} == mtimes


def test_incomplete_output_is_converted_again(tmp_path, clips, weights):
    out = tmp_path / "out"
    run_batch([clips / "a.mp4"], out, opts(weights), workers=1)
    job = plan_jobs(collect_inputs([clips / "a.mp4"]), out)[0]
    assert is_complete(job)
    data = (out / "a.mkv").read_bytes()
    (out / "a.mkv").write_bytes(data[: len(data) // 3])  # cut short (by another tool, a full disk …)
    assert not is_complete(job)
    rep = run_batch([clips / "a.mp4"], out, opts(weights), workers=1)
    assert rep.results[0].status == "ok" and is_complete(job)


def test_a_kept_output_made_with_another_look_says_so(tmp_path, clips, weights):
    """A rerun with another look skips complete outputs, as always, but says which were made
    otherwise (their made-by tag), in the report and the table; the same settings say nothing."""
    from dataclasses import replace

    from hdrvideo.commands.jobs import format_report

    out = tmp_path / "out"
    assert run_batch([clips / "a.mp4"], out, opts(weights), workers=1).results[0].status == "ok"
    same = run_batch([clips / "a.mp4"], out, opts(weights), workers=1).results[0]
    assert same.status == "skipped" and same.note == ""
    rep = run_batch([clips / "a.mp4"], out, replace(opts(weights), look="aces", strength=0.5), workers=1)
    r = rep.results[0]
    assert r.status == "skipped" and r.frames == 0
    assert r.note == ("kept, made with look bt2408, strength 1, PQ 1000 cd/m² (this run: look aces, strength 0.5, "
                      "PQ 1000 cd/m²; -y converts it again)")  # fmt: skip
    assert r.note in format_report(rep)
    r = run_batch([clips / "a.mp4"], out, replace(opts(weights), transfer="hlg"), workers=1).results[0]
    assert "HLG 1000 cd/m²" in r.note


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker through /proc")
def test_local_worker_killed_mid_file_is_retried(tmp_path, long_clip, weights):
    out = tmp_path / "out"
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=kill_the_writer_of, args=(out / ".long.partial.mkv", stop, killed), daemon=True)
    killer.start()
    rep = run_batch([long_clip], out, opts(weights), workers=1, retries=1)
    stop.set()
    assert killed, "the worker was never seen writing"
    res = rep.results[0]
    assert res.status == "ok" and res.attempts == 2, res
    assert res.frames == 240 and is_hdr(out / "long.mkv")
    # with no retries left, the file is reported as failed, and nothing half-written stays behind
    stop, killed = threading.Event(), []
    threading.Thread(target=kill_the_writer_of, args=(out / ".long.partial.mkv", stop, killed), daemon=True).start()
    rep = run_batch([long_clip], out, opts(weights), workers=1, retries=0, overwrite=True)
    stop.set()
    assert killed and rep.results[0].status == "failed" and "killed by signal 9" in rep.results[0].error
    assert not (out / ".long.partial.mkv").exists()


def test_ray_batch_on_a_local_instance(tmp_path, clips, long_clip, weights):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'hdrvideo[ray]'")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "out"
        o = opts(weights).with_(threads=1)
        rep = run_batch([clips], out, o, use_ray=True)
        assert rep.backend == "ray"
        assert [r.status for r in rep.results] == ["ok", "ok", "failed"]
        assert "not a readable media file" in rep.results[2].error
        assert is_hdr(out / "a.mkv") and is_hdr(out / "b.mkv")
        rerun = run_batch([clips], out, o, use_ray=True)
        assert [r.status for r in rerun.results] == ["skipped", "skipped", "failed"] and rerun.frames == 0
        if sys.platform.startswith("linux"):
            stop, killed = threading.Event(), []
            partial = out / ".long.partial.mkv"
            threading.Thread(target=kill_the_writer_of, args=(partial, stop, killed), daemon=True).start()
            rep = run_batch([long_clip], out, o, use_ray=True, retries=2)
            stop.set()
            assert killed, "the Ray worker was never seen writing"
            assert rep.results[0].status == "ok" and rep.results[0].attempts == 2, rep.results[0]
            assert is_hdr(out / "long.mkv")
    finally:
        ray.shutdown()


def test_ray_missing_is_one_clear_line(tmp_path, clips, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    r = CliRunner().invoke(main, ["batch", str(clips / "a.mp4"), "-o", str(tmp_path / "o"), "--ray-address", "auto"])
    assert r.exit_code == 1
    assert r.output.strip() == "hdrvideo: error: Ray is not installed: pip install 'hdrvideo[ray]'"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals")
def test_ctrl_c_stops_the_batch_and_leaves_no_partial_file(tmp_path, long_clip, weights):
    import subprocess

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hdrvideo", "batch", str(long_clip), "-o", str(out), "--weights", str(weights),
           "--device", "cpu", "--quality", "fast", "--preset", "ultrafast", "--workers", "1", "-q"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = out / ".long.partial.mkv"
    deadline = time.monotonic() + 60
    while not partial.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not partial.exists()
    assert not (out / "long.mkv").exists(), "the worker should have been stopped mid-file"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and signals")
def test_workers_end_when_the_batch_is_killed(tmp_path, long_clip, weights):
    import subprocess

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hdrvideo", "batch", str(long_clip), "-o", str(out), "--weights", str(weights),
           "--device", "cpu", "--quality", "fast", "--preset", "ultrafast", "--workers", "1", "-q"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = out / ".long.partial.mkv"
    deadline = time.monotonic() + 60
    while not partial.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert children, "the batch has no worker process"
    proc.kill()  # kill -9: no clean-up runs in the parent
    proc.wait()
    deadline = time.monotonic() + 3  # well before the worker could finish its file
    alive = children
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [c for c in children if Path(f"/proc/{c}").exists() and "Z" not in _proc_state(c)]
    assert not alive, f"workers {alive} outlived their batch"
    assert partial.exists() and not (out / "long.mkv").exists()  # stopped mid-file (a rerun redoes it)


def _proc_state(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"
