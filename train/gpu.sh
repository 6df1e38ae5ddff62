#!/usr/bin/env bash
# One device call's work (docs/models.md, "On a GPU"): the cross-device checks and a float training run on
# the GPU, with everything written under $OUT. Prepare its inputs here first, then run it there:
#
#   train/gpu.sh prepare                        # here: data and wheels into runs/gpu-in (ignored)
#   device run, carry runs/gpu-in:  bash train/gpu.sh run
#   (locally, to try it: OUT=/tmp/out DEVICE=cpu FLOAT_MINUTES=1 bash train/gpu.sh run)
#
# `run` installs the two packages the GPU machine lacks (constriction, pypng) without the network,
# runs the GPU tests (every architecture: the same bytes on CUDA as on the CPU, and decoded on both),
# compresses the validation photos on the GPU (val-gpu.tar: decode them here, on the CPU, with
# `pixzip test`), and trains the default model's float phase for FLOAT_MINUTES (a cosine over that time,
# no quantization-aware phase) with BATCH crops a step, keeping the float checkpoint (float.pt). The
# quantization-aware phase then runs here (train/pixelcnn.sh's second stage: requantize, --resume).
set -euo pipefail
cd "$(dirname "$0")/.."
IN=runs/gpu-in

if [ "${1:-}" = prepare ]; then
    rm -rf "$IN" && mkdir -p "$IN/wheels"
    cp -r ../shared/data/train ../shared/data/val "$IN/"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$IN/wheels" constriction==0.5.0 pypng
    du -sh "$IN"
    exit 0
fi
[ "${1:-}" = run ] || { echo "usage: $0 prepare | run" >&2; exit 2; }
: "${OUT:?OUT must name the folder for the results}"
DEVICE=${DEVICE:-cuda} FLOAT_MINUTES=${FLOAT_MINUTES:-6} BATCH=${BATCH:-64}
export PYTHONUNBUFFERED=1
exec > >(tee "$OUT/log.txt") 2>&1
if [ "$DEVICE" = cuda ]; then  # the device machine: install without the network
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$IN"/wheels/*.whl
    export PYTHONPATH=/tmp/site:$PWD  # pixzip from the checkout (its models/ found beside the package)
    nvidia-smi --query-gpu=name,memory.total --format=csv
    python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_exactness.py
fi
mkdir -p runs/gpu/val
time python3 -m pixzip compress "$IN"/val/*.png -o runs/gpu/val --device "$DEVICE" --force
tar -C runs/gpu -cf "$OUT/val-gpu.tar" val
python3 -m pixzip train --config train/pixelcnn.toml --data "$IN/train" --val "$IN/val" --out runs/gpu \
    --minutes "$FLOAT_MINUTES" --device "$DEVICE" --set qat_fraction=0 --set batch="$BATCH" --set val_minutes=1000
cp runs/gpu/checkpoint.pt "$OUT/float.pt"
