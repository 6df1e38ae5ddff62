#!/usr/bin/env bash
# Reproduces models/multiscale-rowlstm-<sha8>.npz: a Multi-Scale PixelRNN (both stages Row LSTMs: 48
# features, 3 LSTM layers, 7x7 mask-A stem, residual inputs; a 24-feature upsampling network) trained on
# ../shared/data/train for 800 steps on one CPU thread (the last 160 quantization-aware), then exported and
# measured on ../shared/data/val. See docs/models.md.
#
# The shipped model is the Multi-Scale Row LSTM run of train/experiments/equal_budget.sh (the same command,
# with its output in runs/equal/multiscale-rowlstm), exported under this name: the comparison at equal steps
# there.
set -euo pipefail
cd "$(dirname "$0")/.."
pixzip train --config train/multiscale-rowlstm.toml --data ../shared/data/train --val ../shared/data/val \
    --out runs/equal/multiscale-rowlstm --steps 800 --threads 1 --device cpu --set val_minutes=100000
pixzip export runs/equal/multiscale-rowlstm --name multiscale-rowlstm --models-dir models --val ../shared/data/val \
    --data "../shared/data/train: 25 photos (Debian wallpapers, box-downscaled 3-4x), random 48x48 crops"
