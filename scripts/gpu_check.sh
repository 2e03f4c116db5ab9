#!/usr/bin/env bash
# The GPU measurements of docs/speed.md, in one run on a CUDA machine.
#
#   bash scripts/gpu_check.sh [OUTDIR] [PART ...]
#
# PARTs (default: all but tests): info codecs nvdec encoders4k convert4k bench bench4k network stream train tests
# `short`: issue 28's figures within one 10-minute device call (limits sum to 570 s): info, NVDEC
# at 4K, the processing rate at 1080p and 4K (full quality, compiled; the first compile's time is
# in the output), end to end at 4K with four encoders. A lent GPU has 15 minutes in all: run this.
# GPU_CHECK_PLAN=1 prints each step and its limit instead of running it (tests/test_gpu_check.py).
# (nvdec, encoders4k and convert4k read $GPU_RACE_INPUT, e.g. ../shared/data/sdr-video/portrait_4k60.mp4; default: a generated clip)
# (train needs HDR images; `python scripts/pack_training_data.py` makes a small copy to carry)
# Each step has its own time limit, so one slow step cannot take the others with it; every
# result lands in OUTDIR (default: ./gpu-check) as it is made.
#
# Where av and kornia are not installed (a bare CUDA image), put their wheels in .whl/
# (`pip download --no-deps --only-binary=:all: -d .whl av kornia kornia_rs ffmpeg-python future openexr`
# for the machine's Python) and they are installed to /tmp/site first.
# `train` reads HDR images from $GPU_TRAIN_DATA (default ../shared/data/hdr-images).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-check}
shift || true
parts=${*:-info codecs nvdec encoders4k convert4k bench bench4k network stream train}
short=0
if [[ " $parts " == *" short "* ]]; then
    short=1
    parts="info nvdec bench bench4k convert4k"
fi
plan=${GPU_CHECK_PLAN:-0}
export PYTHONUNBUFFERED=1
if [[ $plan == 1 ]]; then
    step() { echo "$1 $2"; }
    run() { :; }
else
    mkdir -p "$out"
    run() { "$@"; }

    if ! python3 -c "import av, kornia" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            .whl/*.whl && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
    python3 -m pip show -q hdrvideo >/dev/null 2>&1 \
        || python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir . >/dev/null
    step() {  # step NAME SECONDS COMMAND...: run with a limit, keep its output
        local name=$1 limit=$2
        shift 2
        echo "== $name ($(date +%T), limit ${limit}s)"
        local t0=$SECONDS
        timeout --signal=INT --kill-after=10 "$limit" "$@" >"$out/$name.txt" 2>&1
        echo "   rc $? after $((SECONDS - t0)) s"
        tail -n 40 "$out/$name.txt"
    }
fi
hv="python3 -m hdrvideo"
has() { [[ " $parts " == *" $1 "* ]]; }

if has info; then
    step info $((short ? 20 : 60)) bash -c 'nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv;
        lscpu | grep -E "Model name|^CPU\(s\)"; python3 -c "import torch, av, kornia, triton;
print(\"torch\", torch.__version__, torch.cuda.get_device_name(), \"av\", av.__version__, \"kornia\", kornia.__version__,
\"triton\", triton.__version__)"'
fi
if has codecs; then
    # which hardware encoders open (H100/H200: none, by design), and what a conversion then says
    step codecs 90 bash -c 'python3 -c "from hdrvideo.media.encoder_settings import HARDWARE, hardware_problem
for c in HARDWARE: print(c, hardware_problem(c) or \"opens\")";
        python3 -c "import av; print(\"hwaccel devices:\", getattr(av.codec.hwaccel, \"hwdevices_available\", lambda: \"?\")())";
        python3 -c "from pathlib import Path; from hdrvideo.commands.bench import make_bench_clip;
make_bench_clip(Path(\"/tmp/c.mp4\"), 1920, 1080, 60)" &&
        python3 -m hdrvideo convert /tmp/c.mp4 /tmp/c_nvenc.mkv --codec hevc_nvenc -y; echo "rc $?";
        python3 -m hdrvideo info /tmp/c_nvenc.mkv 2>&1 | head -20'
fi
# first: the processing rate, and the compiled kernels at 1080p and 4K that convert4k then loads
if has bench; then  # (short: full quality only, compiled; its first compile at this size is in the output)
    ((short)) || step bench_off 120 $hv bench --size 1920x1080 --frames 96 --modes null,fast,full --compile off --json
    step bench_auto $((short ? 170 : 200)) $hv bench --size 1920x1080 --frames 96 \
        --modes $( ((short)) && echo full || echo null,fast,full) --compile auto --json
fi
if has bench4k; then
    step bench_4k $((short ? 140 : 150)) $hv bench --size 3840x2160 --frames 48 \
        --modes $( ((short)) && echo full || echo null,full) --compile auto --json
fi
if has nvdec; then
    # NVDEC (downloaded, and left on the GPU through DLPack) against the CPU's decoder at 4K
    step nvdec_4k $((short ? 80 : 120)) python3 scripts/nvdec_check.py --frames $((short ? 120 : 240)) ${GPU_RACE_INPUT:+--input "$GPU_RACE_INPUT"}
fi
if has encoders4k; then
    # one x265, several at once on chunks (--encode-jobs), SVT-AV1's fast presets, on all cores at
    # 4K: fps, size and luma PSNR of the same planes
    step encoders_4k 420 python3 scripts/encoder_race.py --frames 96 ${GPU_RACE_INPUT:+--input "$GPU_RACE_INPUT"} \
        --candidate hevc:ultrafast:20 --candidate hevc:ultrafast:20:x2 --candidate hevc:ultrafast:20:x4 \
        --candidate hevc:ultrafast:20:x8 --candidate hevc:ultrafast:24 --candidate av1:12:40 \
        --candidate av1:12:40:x2 --candidate av1:12:40:x4 --candidate av1:10:36
fi
if has convert4k; then
    # end to end at 4K, shipped model at full quality: one x265, then 4 and 8 at once (short: 4)
    [[ -n ${GPU_RACE_INPUT:-} ]] || step clip_4k 30 python3 -c "from pathlib import Path;
from hdrvideo.commands.bench import make_bench_clip; make_bench_clip(Path('/tmp/c4k.mp4'), 3840, 2160, 240)"
    for jobs in $( ((short)) && echo 4 || echo 1 4 8); do
        step "convert_4k_jobs$jobs" $((short ? 130 : 240)) $hv convert "${GPU_RACE_INPUT:-/tmp/c4k.mp4}" \
            /tmp/c4k_out.mkv -y --preset ultrafast --encode-jobs $jobs
    done
fi
if has network; then
    step network 150 $hv bench --network --sizes 1920x1080,3840x2160 --dtypes bf16,fp16 \
        --variants eager,channels_last,cudagraphs,compile --seconds 0.5
fi
if has stream; then
    step stream_1080p 40 $hv stream -f lavfi -i "testsrc2=size=1920x1080:rate=30,realtime" \
        -o "$out/stream.mkv" --duration 10 --quality full
    run rm -f "$out/stream.mkv"
fi
if has train; then
    step train 100 $hv train --data "${GPU_TRAIN_DATA:-../shared/data/hdr-images}" --out /tmp/gpu-train \
        --steps 100000 --batch-size 32 --crop 256 --val-every 100000 --ckpt-every 100000 --time-limit 0.75
    run cp /tmp/gpu-train/log.csv "$out/train_log.csv" 2>/dev/null
fi
if has tests; then
    # the tests that run the processor, the network, the compiled path and training, on the GPU
    step tests 200 python3 -m pytest -q -p no:cacheprovider -n 8 tests/test_processor.py tests/test_compiled.py \
        tests/test_model.py tests/test_convert.py tests/test_temporal.py tests/test_train.py tests/test_quality.py \
        tests/test_ycbcr_input.py tests/test_hardware_codecs.py tests/test_light_levels.py tests/test_hw_decode.py \
        tests/test_chunked_encode.py
fi
[[ $plan == 1 ]] || echo "== done $(date +%T)"
