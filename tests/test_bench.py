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


def test_bench_rejects_bad_options():
    r = CliRunner().invoke(main, ["bench", "--size", "64x47"])
    assert r.exit_code == 1 and "--size" in r.output
    r = CliRunner().invoke(main, ["bench", "--modes", "null,turbo"])
    assert r.exit_code == 1 and "--modes" in r.output
