#!/usr/bin/env bash
# Reproduces models/pixelcnn-<sha8>.npz, the default model: a PixelCNN (48 features, 5 residual blocks,
# residual inputs; a 15-bit first layer, per-feature stream scales, a 16-bit residual stream, a 12-bit output
# layer) trained on CPU cores, on ../shared/data/train and then on the data recipe's set, exported and
# measured on ../shared/data/val.
# See docs/models.md.
#
# It was made in five runs, and these are the commands that ran:
# 1. A float run with a budget of 140 minutes (its cosine planned over the first 112, then quantization-aware
#    with an 8-bit stream). A loop copied runs/long/checkpoint.pt every 5 minutes; the copy at step 7727
#    (minute 110, learning rate down to 4e-5) is the float phase, and the run was stopped there. (This
#    checkpoint, quantized with a 16-bit stream, was the default pixelcnn-1b22c9ec.)
# 2. A warm restart from it (train/restart.py keeps the weights and Adam's state, zeroes the clock;
#    train/requantize.py gives it the 16-bit stream): a new schedule of 125 minutes, warm-up to 6e-4 and a
#    cosine over the first 100, then 25 minutes quantization-aware, with another seed for new crops. A loop
#    copied its checkpoint too; the copy at step 4669 (minute 95) is the float phase used next. (This run,
#    to its end, was the default pixelcnn-96d2cbc4.)
# 3. The quantization-aware phase alone from that copy, with a 12-bit output layer: 1,600 steps on one
#    thread (32 minutes), another seed. (The same run with the int8 output layer, side by side, ended at
#    2.0325 bpsp against this one's 2.0264: docs/models.md, "The quantization gap". This run was the default
#    pixelcnn-3cab8674.)
# 4. Training on from that model with quantization-aware steps only (train/dequantize.py gives its float
#    weights and scales back): a new cosine of the quantization-aware learning rate from 3e-4, 100 minutes on
#    one thread, seed 5, beside the same run with 1.5e-4 on the other core (docs/models.md, "Training on").
#    (This run was the default pixelcnn-f20b173f.)
# 5. The training campaign (train/campaign.sh, issue 20): training on from that model, quantization-aware, on
#    the data recipe's set (train/data_recipe.py) plus the 25 photos, one cosine of the quantization-aware
#    learning rate from 3e-4, seed 6, in seven sittings (one a working session), 965 minutes in all
#    (docs/models.md, "The training campaign").
# train/pixelcnn.toml holds the fifth run's settings; the earlier runs' differ as their --set say.
set -euo pipefail
cd "$(dirname "$0")/.."
pixzip train --config train/pixelcnn.toml --set stream_bits=8 --set out_weight_bits=8 --set qat_fraction=0.2 \
    --set lr=2e-3 --set seed=0 --data ../shared/data/train --val ../shared/data/val --out runs/long --minutes 140 \
    --threads 2 --device cpu --set val_minutes=1000
# Run 1 overwrites its checkpoint every 5 minutes: FLOAT must be a copy of one from before minute 112, when
# its quantization-aware phase begins (ours: step 7727 at minute 110).
FLOAT=${FLOAT:-runs/long/float.pt}
test -f "$FLOAT" || { echo "keep a checkpoint of run 1 from before minute 112 and name it in FLOAT" >&2; exit 1; }
python train/restart.py "$FLOAT" runs/restart/float0.pt
python train/requantize.py runs/restart/float0.pt runs/restart/checkpoint.pt stream_bits=16
pixzip train --config train/pixelcnn.toml --set qat_fraction=0.2 --set seed=1 --data ../shared/data/train \
    --val ../shared/data/val --out runs/restart --resume --minutes 125 --set val_minutes=1000 --threads 2 --device cpu
# Run 2 too: FLOAT2 must be a copy of its checkpoint from before minute 100 (ours: step 4669 at minute 95).
FLOAT2=${FLOAT2:-runs/restart/float.pt}
test -f "$FLOAT2" || { echo "keep a checkpoint of run 2 from before minute 100 and name it in FLOAT2" >&2; exit 1; }
python train/restart.py "$FLOAT2" runs/qat-out12/float0.pt
python train/requantize.py runs/qat-out12/float0.pt runs/qat-out12/checkpoint.pt out_weight_bits=12
pixzip train --config train/pixelcnn.toml --data ../shared/data/train --val ../shared/data/val \
    --out runs/qat-out12 --resume --steps 1600 --set seed=3 --set val_minutes=1000 --threads 1 --device cpu
pixzip export runs/qat-out12 --name pixelcnn --models-dir models --val ../shared/data/val \
    --data "../shared/data/train: 25 photos (Debian wallpapers, box-downscaled 3-4x), random 48x48 crops"
# Run 4 from the model run 3 exported (models/pixelcnn-3cab8674.npz, shipped).
python train/dequantize.py models/pixelcnn-3cab8674.npz runs/cont-a/checkpoint.pt
pixzip train --config train/pixelcnn.toml --data ../shared/data/train --val ../shared/data/val \
    --out runs/cont-a --resume --minutes 100 --set val_minutes=35 --threads 1 --device cpu
pixzip export runs/cont-a --name pixelcnn --models-dir models --val ../shared/data/val \
    --data "../shared/data/train: 25 photos (Debian wallpapers, box-downscaled 3-4x), random 48x48 crops"
# Run 5 from the model run 4 exported (models/pixelcnn-f20b173f.npz, shipped): its first 20 minutes on
# ../shared/data/train alone, then train/campaign.sh (ours: seven sittings, the first six on a wall-clock
# budget of 900 minutes, the last on CPU minutes up to 965; one sitting to the end is `train/campaign.sh 100000`).
python train/dequantize.py models/pixelcnn-f20b173f.npz runs/campaign/checkpoint.pt
pixzip train --config train/pixelcnn.toml --set seed=6 --set val_minutes=60 --data ../shared/data/train \
    --val ../shared/data/val --out runs/campaign --resume --minutes 900 --stop-after 20 --threads 1 --device cpu
train/campaign.sh 100000
pixzip export runs/campaign --name pixelcnn --models-dir models --val ../shared/data/val \
    --data "runs/data/campaign: the data recipe's 234 images (train/data_recipe.py) and the 25 photos of ../shared/data/train, random 48x48 crops"
