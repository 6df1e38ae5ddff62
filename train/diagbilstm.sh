#!/usr/bin/env bash
# Reproduces models/diagbilstm-<sha8>.npz: a Diagonal BiLSTM (48 features, 3 bidirectional layers, 7x7
# mask-A stem, residual inputs) trained on ../shared/data/train on one CPU thread for 90 minutes (the last
# 18 quantization-aware), then exported and measured on ../shared/data/val. See docs/models.md.
#
# The shipped run used exactly this command (618 steps) while two other trainings and the test suite shared
# the machine's two cores: a run on a quiet machine, or with --threads 2, gets more steps.
set -euo pipefail
cd "$(dirname "$0")/.."
pixzip train --config train/diagbilstm.toml --data ../shared/data/train --out runs/diagbilstm \
    --minutes 90 --threads 1 --device cpu
pixzip export runs/diagbilstm --name diagbilstm --val ../shared/data/val \
    --data "../shared/data/train: 25 photos (Debian wallpapers, box-downscaled 3-4x), random 48x48 crops"
