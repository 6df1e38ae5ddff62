#!/usr/bin/env bash
# Reproduces models/multiscale-<sha8>.npz: a Multi-Scale PixelCNN (both stages: 48 features, 5 residual
# blocks, 7x7 mask-A stem, residual inputs; a 24-feature upsampling network) trained on
# ../shared/data/train on one CPU thread for 70 minutes (the last 14 quantization-aware), then exported and
# measured on ../shared/data/val. See docs/models.md.
#
# The shipped run used exactly this command (1,737 steps) while two other trainings shared the machine's
# two cores: a run on a quiet machine, or with --threads 2, gets more steps.
set -euo pipefail
cd "$(dirname "$0")/.."
pixzip train --config train/multiscale.toml --data ../shared/data/train --out runs/multiscale \
    --minutes 70 --threads 1 --device cpu
pixzip export runs/multiscale --name multiscale --models-dir models --val ../shared/data/val \
    --data "../shared/data/train: 25 photos (Debian wallpapers, box-downscaled 3-4x), random 48x48 crops"
