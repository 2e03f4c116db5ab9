"""The terminal side of training and measuring: ``hdrvideo train``, ``eval`` and ``bench``.

``cli.py`` parses the options and calls one function here per command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..pipeline.settings import ConversionSettings, SettingsError, pick_device
from .ui import UserError, say

__all__ = ["train", "evaluate", "bench", "parse_widths"]


def _device(device: str | None) -> str:
    try:
        return pick_device(device)
    except SettingsError as e:
        raise UserError(str(e)) from None


def _load(weights, device: str, dtype=None):
    import torch

    from ..model import WeightsError, load_model

    try:
        return load_model(weights, device=device, dtype=dtype or torch.float32)
    except WeightsError as e:
        raise UserError(str(e)) from None


def parse_widths(text: str | None):
    """``--widths local,local_out,mid,glob,fuse[,mid_depth]`` → ExpandNetConfig (default: the authors')."""
    from ..model import ExpandNetConfig

    if not text:
        return ExpandNetConfig()
    try:
        v = [int(x) for x in text.split(",")]
        if len(v) not in (5, 6) or min(v) < 1:
            raise ValueError
    except ValueError:
        raise UserError(
            f"--widths takes 5 or 6 positive integers (local,local_out,mid,glob,fuse[,mid_depth]), got {text!r}"
        ) from None
    names = ["local_width", "local_out", "mid_width", "glob_width", "fuse_width", "mid_depth"]
    return ExpandNetConfig(**dict(zip(names, v, strict=False)))


def train(*, data, out, widths, init, time_limit, **options) -> None:
    """``hdrvideo train``: options → :class:`~hdrvideo.training.train.TrainConfig` → a run; prints its summary."""
    from ..media.hdrio import MediaError
    from ..training.train import TrainConfig, train

    if options["crop"] % 16 or options["crop"] < 32:
        raise UserError(f"--crop must be a multiple of 16 and at least 32, got {options['crop']}")
    options["val_pairs"] = [str(p) for p in options["val_pairs"]]
    options["teacher"] = str(options["teacher"]) if options.get("teacher") else None
    options["pair_files"] = [str(p) for p in options.get("pair_files", ())]
    if not data and not options["pair_files"]:
        raise UserError("train needs --data (HDR media) or --pairs (packed SDR/HDR pairs)")
    curve = options.pop("curve", None)
    if curve:
        try:
            ip, c = (float(x) for x in curve.split(","))
            if not (0 < ip < 1 and 0 < c <= 10):
                raise ValueError
        except ValueError:
            raise UserError(f"--curve takes IP,C with IP in (0, 1) and C in (0, 10], got {curve!r}") from None
        options["curve"] = (ip, c)
    cfg = TrainConfig(data=[str(d) for d in data], out=str(out), model=parse_widths(widths),
                      init=str(init) if init else None, time_limit_min=time_limit, **options)  # fmt: skip
    try:
        summary = train(cfg, log=lambda m: click.echo(m, err=True))
    except (MediaError, FileExistsError, ValueError) as e:
        raise UserError(str(e)) from None
    except KeyboardInterrupt:
        say("interrupted; the last checkpoint stays in --out (continue with --resume)")
        sys.exit(130)
    click.echo(json.dumps(summary))
    if summary.get("interrupted"):
        sys.exit(130)


def _model_name(p) -> str:
    return Path(p).parent.name + "/" + Path(p).name


def evaluate(
    *, data, models, held_out, val_fraction, max_side, quality, device, pairs, renderings, frames_per_clip, crf,
    peak_nits, as_json, strengths="1", sets="aces,photos,renderings", aces_target="1000", aces_split="test",
    aces_stops="0", looks="bt2408",
) -> None:  # fmt: skip
    """``hdrvideo eval``: held-out stills through a virtual camera, or (``pairs``) graded pairs."""
    from ..media.hdrio import MediaError
    from ..model import default_weights_path
    from ..pipeline.processor import QUALITY_LONG_SIDE, FrameProcessor

    device = _device(device)
    long_side = QUALITY_LONG_SIDE[quality]
    paths = list(models) or [default_weights_path()]
    if pairs:
        from ..training.graded import (
            aces_pairs,
            format_pairs_table,
            load_references,
            make_pairs,
            photo_pairs,
            score_pairs,
        )
        from ..training.grading import RENDERINGS

        try:
            levels = [float(x) for x in strengths.split(",") if x.strip()]
            if not levels or not all(0 <= v <= 3 for v in levels):
                raise ValueError
        except ValueError:
            raise UserError(f"--strength takes a comma list of numbers in [0, 3], got {strengths!r}") from None
        from ..pipeline.looks import LOOKS

        styles = _choices(looks, LOOKS, "--look")
        chosen = tuple(r.strip() for r in renderings.split(",") if r.strip()) if renderings else RENDERINGS
        if not chosen or any(r not in RENDERINGS for r in chosen):
            raise UserError(f"--renderings takes a comma list of {', '.join(RENDERINGS)}, got {renderings!r}")
        wanted = {x.strip() for x in sets.split(",") if x.strip()}
        if not wanted or not wanted <= {"aces", "photos", "renderings"}:
            raise UserError(f"--sets takes a comma list of aces, photos, renderings; got {sets!r}")
        try:
            stops = tuple(float(x) for x in aces_stops.split(",") if x.strip()) or (0.0,)
        except ValueError:
            raise UserError(f"--aces-stops takes a comma list of numbers, got {aces_stops!r}") from None
        log = lambda m: click.echo(m, err=True)  # noqa: E731
        try:
            refs = load_references(list(data), max_side, frames_per_clip, log=log) if "renderings" in wanted else []
            photos = photo_pairs(list(data), max_side, log=log) if "photos" in wanted else []
            studio = aces_pairs(list(data), max_side, aces_target, aces_split, stops, log) if "aces" in wanted else []
        except MediaError as e:
            raise UserError(str(e)) from None
        if not refs and not photos and not studio:
            raise UserError("no HDR references in --data (HDR stills for ACES pairs, PQ/HLG videos, or gain-map photos)")
        graded = studio + photos + make_pairs(refs, chosen, crf=crf)
        say(f"{len(studio)} ACES 2.0 pairs ({aces_split} scenes) + {len(photos)} gain-map photos + {len(refs)} "
            f"references × {len(chosen)} renderings = {len(graded)} pairs")  # fmt: skip
        base = FrameProcessor(None, "pq", peak_nits, device=device)
        results = {"BT.2408 alone (no expansion)": score_pairs(base, graded, base)}
        for method, label in (("bt2446a", "BT.2446-1 Method A inverse"), ("bt2446c", "BT.2446-1 Method C inverse")):
            formula = FrameProcessor(None, "pq", peak_nits, device=device, method=method)
            results[label] = score_pairs(formula, graded, base)
        for look in styles:
            if look != "bt2408":  # the look's own placement, without a network: what the network adds to it
                curve = FrameProcessor(None, "pq", peak_nits, device=device, look=look)
                results[f"the {look} look alone (no network)"] = score_pairs(curve, graded, base)
        for p in paths:
            model = _load(p, device)
            for look in styles:
                for s in levels:
                    proc = FrameProcessor(model, "pq", peak_nits, net_long_side=long_side, strength=s, look=look)
                    name = _model_name(p) + ("" if levels == [1.0] else f" ×{s:g}")
                    results[name + ("" if styles == ["bt2408"] else f", {look} look")] = score_pairs(proc, graded, base)
        if as_json:
            click.echo(json.dumps({k: {"overall": r.overall, "per_set": r.per_set, "per_rendering": r.per_rendering,
                                       "pairs": r.n}
                                   for k, r in results.items()}))  # fmt: skip
        else:
            click.echo(format_pairs_table(results))
        return

    from ..training.data import load_frames
    from ..training.evaluate import evaluate, format_table

    try:
        train_scenes, val = load_frames(list(data), max_side=max(1024, max_side), val_fraction=val_fraction,
                                        log=lambda m: click.echo(m, err=True))  # fmt: skip
    except MediaError as e:
        raise UserError(str(e)) from None
    scenes = val if held_out else train_scenes + val
    if not scenes:
        raise UserError("no held-out scenes in --data; use --all to score every scene")
    results = {"linear (BT.2408, no expansion)": evaluate(None, scenes, device, max_side=max_side)}
    for p in paths:
        results[_model_name(p)] = evaluate(_load(p, device), scenes, device, max_side=max_side,
                                           net_long_side=long_side)  # fmt: skip
    if as_json:
        click.echo(json.dumps({k: vars(r) for k, r in results.items()}))
    else:
        click.echo(format_table(results))


def _sizes(text: str, what: str, even: bool = False) -> list[tuple[int, int]]:
    try:
        dims = [tuple(int(v) for v in s.lower().split("x")) for s in text.split(",") if s.strip()]
        if not dims or any(len(d) != 2 or min(d) < 16 or (even and (d[0] % 2 or d[1] % 2)) for d in dims):
            raise ValueError
    except ValueError:
        raise UserError(f"{what} takes WxH{' with even sides' if even else ''} of at least 16, got {text!r}") from None
    return dims  # type: ignore[return-value]


def _choices(text: str, allowed, what: str) -> list[str]:
    chosen = [v.strip() for v in text.split(",") if v.strip()]
    if not chosen or any(v not in allowed for v in chosen):
        raise UserError(f"{what} takes a comma list of {', '.join(allowed)}, got {text!r}")
    return chosen


def bench(
    *, input_path, size, frames, modes, device, weights, batch_size, preset, as_json, network, sizes, dtypes,
    variants, seconds, compile_=None,
) -> None:  # fmt: skip
    """``hdrvideo bench``: end to end (null / fast / full), or the network alone (``network``)."""
    from .bench import DTYPES, MODES, VARIANTS, bench_network, format_bench, format_network, run_bench

    log = (lambda m: None) if as_json else (lambda m: click.echo(m, err=True))
    device = _device(device)
    if network:
        dims = _sizes(sizes, "--sizes")
        dt = _choices(dtypes, DTYPES, "--dtypes")
        vs = _choices(variants, VARIANTS, "--variants")
        rows = bench_network(_load(weights, device), dims, dt, vs, device, batch_size or 1, seconds, log=log)
        click.echo(json.dumps({"device": device, "rows": rows}) if as_json else format_network(rows, device))
        return
    (w, h), = _sizes(size, "--size", even=True)
    chosen = tuple(_choices(modes, MODES, "--modes"))
    # the same settings, processor and network number format as convert builds by default
    settings = ConversionSettings(weights=str(weights) if weights else None, device=device, batch_size=batch_size,
                                  preset=preset, compile=compile_)  # fmt: skip
    try:
        if any(m != "null" for m in chosen):
            settings.with_(quality="fast").build_processor()  # a weights problem is one line, before any work
        result = run_bench(settings, (w, h), frames, chosen, input_path, log=log)
    except SettingsError as e:
        raise UserError(str(e)) from None
    click.echo(json.dumps(result) if as_json else format_bench(result))
