#!/usr/bin/env bash
# The training campaign for the next default model (docs/models.md, "The training campaign"): the default's
# PixelCNN trained on, quantization-aware, on the data recipe's set (train/data_recipe.py) plus the 25
# original training photos, planned as ONE cosine schedule (qat_lr 3e-4 down to 3e-5) over 900 minutes, run in
# sittings of a working session each. Sittings 1-6 (770 minutes, one thread) counted wall-clock minutes, and
# their logs hold up to 65 minutes of stretches that ran slow or stopped; from sitting 7 the budget counts the
# process's CPU minutes (--clock cpu) and reaches 965, so that the campaign has spent at least 15 CPU-hours
# however those stretches are read (docs/models.md, "The training campaign"). Each sitting resumes from
# train/campaign/checkpoint.pt (weights, Adam's state, step, seconds, log; committed at the end of every
# sitting, replacing the previous one) and stops after SITTING minutes with a checkpoint:
#
#     train/campaign.sh [SITTING_MINUTES] [THREADS]   # defaults 130 and 1 (the other core stays free)
#     cp runs/campaign/checkpoint.pt train/campaign/checkpoint.pt    # before the session ends; commit it
#
# The first sitting started from models/pixelcnn-f20b173f.npz (python train/dequantize.py ... ) on
# ../shared/data/train alone for its first 20 minutes (1459 steps), then on the recipe's data.
set -euo pipefail
cd "$(dirname "$0")/.."
SITTING=${1:-130}
THREADS=${2:-1}
test -d runs/data/train-v1 || python train/data_recipe.py runs/data/train-v1
mkdir -p runs/data/campaign runs/campaign
for f in runs/data/train-v1/*.png; do ln -sf "../train-v1/$(basename "$f")" runs/data/campaign/; done
for f in ../shared/data/train/*.png; do ln -sf "$(realpath "$f")" "runs/data/campaign/orig-$(basename "$f")"; done
test -f runs/campaign/checkpoint.pt || cp train/campaign/checkpoint.pt runs/campaign/checkpoint.pt
pixzip train --config train/pixelcnn.toml --set seed=6 --set val_minutes=60 --data runs/data/campaign \
    --val ../shared/data/val --out runs/campaign --resume --minutes 965 --clock cpu --stop-after "$SITTING" \
    --threads "$THREADS" --device cpu
