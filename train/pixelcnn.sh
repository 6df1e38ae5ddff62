#!/usr/bin/env bash
# Reproduces models/pixelcnn-<sha8>.npz, the default model: a PixelCNN (48 features, 5 residual blocks,
# residual inputs; a 15-bit first layer, per-feature stream scales, a 16-bit residual stream) trained on
# ../shared/data/train on 2 CPU cores, then exported and measured on ../shared/data/val. See docs/models.md.
#
# It was made in two stages, and these are the commands that ran:
# 1. A float run with a budget of 140 minutes (its cosine planned over the first 112, then quantization-aware
#    with an 8-bit stream). A loop copied runs/long/checkpoint.pt every 5 minutes; the copy at step 7727
#    (minute 110, learning rate down to 4e-5) is the float phase, and the run was stopped there.
# 2. train/requantize.py gives that float checkpoint a 16-bit stream, and a step-budgeted resume runs the
#    quantization-aware phase from step 7727 to 9027 (1,300 steps, 24 minutes on one thread, beside the same
#    phase with an 8-bit stream for comparison: runs/long-q8, docs/models.md).
# (train/pixelcnn.toml holds the second stage's settings; the first stage's differ as its --set say.)
set -euo pipefail
cd "$(dirname "$0")/.."
pixzip train --config train/pixelcnn.toml --set stream_bits=8 --set qat_fraction=0.2 --data ../shared/data/train \
    --val ../shared/data/val --out runs/long --minutes 140 --threads 2 --device cpu --set val_minutes=1000
# Step 1 overwrites its checkpoint every 5 minutes: FLOAT must be a copy of one from before minute 112, when
# its quantization-aware phase begins (ours: step 7727 at minute 110).
FLOAT=${FLOAT:-runs/long/float.pt}
test -f "$FLOAT" || { echo "keep a checkpoint of step 1 from before minute 112 and name it in FLOAT" >&2; exit 1; }
python train/requantize.py "$FLOAT" runs/long-q16/checkpoint.pt stream_bits=16
NUMBA_NUM_THREADS=1 pixzip train --config train/pixelcnn.toml --data ../shared/data/train --val ../shared/data/val \
    --out runs/long-q16 --resume --steps 9027 --set val_minutes=1000 --threads 1 --device cpu
pixzip export runs/long-q16 --name pixelcnn --val ../shared/data/val \
    --data "../shared/data/train: 25 photos (Debian wallpapers, box-downscaled 3-4x), random 48x48 crops"
