#!/usr/bin/env bash
# The architecture comparison of docs/models.md ("At equal training steps"): PixelCNN, Row LSTM, Diagonal
# BiLSTM, and the Multi-Scale models on the PixelCNN and on the Row LSTM, trained with the settings of
# train/NAME.toml (the same crops from the same seed, batch, optimizer and schedule shape, last fifth
# quantization-aware) for the same number of steps, so each sees the same 29.5 M training pixels. One CPU
# thread each, in three lanes on the two cores: the Diagonal BiLSTM (6-7 s a step here) alone, the PixelCNN,
# Row LSTM and Multi-Scale PixelCNN in turn, and the Multi-Scale Row LSTM. Validation happens once, at the end, on the exact integer model; then each run is exported to
# runs/equal/models (not shipped) with its actual file cost on ../shared/data/val.
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${STEPS:-800}
OUT=runs/equal
mkdir -p "$OUT"

train_and_export() {
    local name=$1
    /usr/bin/time -f "$name: %e s wall" pixzip train --config "train/$name.toml" --data ../shared/data/train \
        --val ../shared/data/val --out "$OUT/$name" --steps "$STEPS" --threads 1 --device cpu \
        --set val_minutes=100000
    pixzip export "$OUT/$name" --name "$name-eq$STEPS" --models-dir "$OUT/models" --val ../shared/data/val
}

train_and_export diagbilstm > "$OUT/diagbilstm.log" 2>&1 &
train_and_export multiscale-rowlstm > "$OUT/multiscale-rowlstm.log" 2>&1 &
for name in pixelcnn rowlstm multiscale; do
    train_and_export "$name" > "$OUT/$name.log" 2>&1
done
wait
