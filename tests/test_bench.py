"""`hdrvideo bench --json`: a smoke test on a tiny size (no timing assertions)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hdrvideo.cli import main


def test_bench_json_smoke():
    r = CliRunner().invoke(main, ["bench", "--size", "64x48", "--frames", "6", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output.strip().splitlines()[-1])
    assert {"null_fps", "fast_fps", "full_fps", "device", "size", "stages"} <= set(d)
    assert d["size"] == "64x48" and d["frames"] == 6
    assert all(d[f"{m}_fps"] > 0 for m in ("null", "fast", "full"))
    assert set(d["stages"]) == {"null", "fast", "full"}
    assert all({"decode_ms", "colour_ms", "network_ms", "encode_ms"} <= set(s) for s in d["stages"].values())
    # issue 28 #5: the rate without the encoder beside the end-to-end one, and which stage sets the pace
    assert all(d[f"{m}_processing_fps"] > 0 for m in ("null", "fast", "full"))
    assert set(d["pace"].values()) <= {"decode", "processing", "encode"} and set(d["pace"]) == set(d["stages"])
    # the first batch's wait (compiling, or loading compiled kernels), e.g. max-autotune on a GPU
    assert all(d[f"{m}_first_batch_s"] > 0 for m in ("null", "fast", "full"))


def test_the_pace_is_the_slowest_stage_and_the_table_shows_both_rates():
    from hdrvideo.commands.bench import format_bench, pace

    st = {"decode_ms": 3.0, "colour_ms": 10.0, "network_ms": 25.0, "encode_ms": 30.0}
    assert pace(st) == "processing"  # 35 ms of processor against 30 of encoder
    assert pace({**st, "encode_ms": 40.0}) == "encode"
    r = {"size": "1920x1080", "frames": 48, "device": "cpu", "threads": 2, "encoder": "x265", "stages": {"fast": st},
         "fast_fps": 20.0, "fast_processing_fps": 28.5, "pace": {"fast": "processing"}}  # fmt: skip
    table = format_bench(r)
    assert "| fast | 20.00 | 28.50 | 3.0 | 10.0 | 25.0 | 30.0 | processing |" in table
    assert "first batch" not in table  # (not measured: no line)
    table = format_bench({**r, "null_first_batch_s": 0.5, "fast_first_batch_s": 71.26})
    assert "first batch (compiling, or loading compiled kernels from the cache): null 0.5 s, fast 71.3 s" in table


def test_bench_rejects_bad_options():
    r = CliRunner().invoke(main, ["bench", "--size", "64x47"])
    assert r.exit_code == 1 and "--size" in r.output
    r = CliRunner().invoke(main, ["bench", "--modes", "null,turbo"])
    assert r.exit_code == 1 and "--modes" in r.output


def test_network_flops_match_the_paper_and_bench_network_runs_every_row():
    from hdrvideo.commands.bench import bench_network, network_flops
    from hdrvideo.model import ExpandNet, load_model

    # the issue's figure for the authors' network: about 0.41 MFLOP per pixel, 0.85 TFLOP at 1080p
    per_pixel = network_flops(ExpandNet(), 1920, 1080) / (1920 * 1080)
    assert 0.39e6 < per_pixel < 0.43e6
    rows = bench_network(load_model(None), [(64, 48)], ["fp32"], ["eager", "channels_last", "cudagraphs"], seconds=0.1)
    assert [r["variant"] for r in rows] == ["eager", "channels_last", "cudagraphs"]
    assert rows[0]["fps"] > 0 and rows[0]["tflops"] >= 0 and rows[1]["fps"] > 0
    assert "CUDA" in rows[2]["error"]  # not available here: a row that says so, not a crash
    # a second size after a half-precision row: the FLOP count must not inherit the model's dtype
    rows = bench_network(load_model(None), [(64, 48), (32, 32)], ["bf16"], ["eager"], seconds=0.1)
    assert [r["size"] for r in rows] == ["64x48", "32x32"] and all("error" not in r for r in rows)


def test_bench_network_cli_json():
    r = CliRunner().invoke(
        main, ["bench", "--network", "--sizes", "64x48", "--dtypes", "fp32", "--variants", "eager", "--seconds", "0.1",
               "--json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.output.strip().splitlines()[-1])
    assert d["device"] == "cpu" and d["rows"][0]["size"] == "64x48" and d["rows"][0]["ms"] > 0
    r = CliRunner().invoke(main, ["bench", "--network", "--dtypes", "fp8"])
    assert r.exit_code == 1 and "--dtypes" in r.output


def test_the_encoder_race_scores_each_candidate_on_the_same_planes(tmp_path):
    """scripts/encoder_race.py (issue 28, item 4): every candidate encodes the same 10-bit planes;
    fps, bytes and luma PSNR come back, and a coarser CRF gives fewer bytes and lower PSNR."""
    import subprocess
    import sys

    cmd = [sys.executable, "scripts/encoder_race.py", "--size", "192x108", "--frames", "6", "--json",
           "--candidate", "hevc:ultrafast:14", "--candidate", "hevc:ultrafast:40", "--candidate", "av1:12:40"]  # fmt: skip
    rows = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout)
    assert [r["candidate"] for r in rows] == ["hevc:ultrafast:14", "hevc:ultrafast:40", "av1:12:40"]
    assert all(r["frames"] == 6 and r["fps"] > 0 and r["bytes"] > 0 and 20 < r["psnr_y"] < 100 for r in rows)
    fine, coarse = rows[0], rows[1]
    assert coarse["bytes"] < fine["bytes"] and coarse["psnr_y"] < fine["psnr_y"]


def test_on_a_gpu_bench_measures_what_a_batch_in_flight_gains(monkeypatch):
    """Issue 28 #3: where batches are kept in flight (a GPU; forced here on the CPU), bench also
    measures the rate without, and the table states the ratio."""
    from hdrvideo.commands.bench import format_bench, run_bench
    from hdrvideo.pipeline import frames
    from hdrvideo.pipeline.settings import ConversionSettings

    real = frames.HostTransfer.__init__

    def one_in_flight(self, device):
        real(self, device)
        self.in_flight = 1

    monkeypatch.setattr(frames.HostTransfer, "__init__", one_in_flight)
    r = run_bench(ConversionSettings(compile="off"), size=(64, 48), frames=6, modes=("null",))
    assert r["null_processing_fps"] > 0 and r["null_processing_fps_serial"] > 0
    assert "fps without the encoder with one batch in flight" in format_bench(r)
    monkeypatch.setattr(frames.HostTransfer, "__init__", real)
    assert "null_processing_fps_serial" not in run_bench(ConversionSettings(compile="off"), size=(64, 48), frames=6,
                                                         modes=("null",))  # fmt: skip
