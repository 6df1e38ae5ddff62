"""Change how a float checkpoint will be quantized, before its quantization-aware phase begins.

    python train/requantize.py FLOAT_CHECKPOINT OUT_CHECKPOINT first_weight_bits=15 channel_scales=true \
        stream_bits=16 out_weight_bits=12

The settings named here (pixzip.pixelcnn.PixelCNNConfig) say only how the float network becomes the
integer one - the float weights do not depend on them - so a checkpoint that is not calibrated yet can take
new ones; `pixzip train --resume` on OUT_CHECKPOINT's folder then runs the quantization-aware phase with them.
This is how the last defaults were made from earlier runs' float phases (train/pixelcnn.sh).
"""
import sys
from pathlib import Path

import torch

QUANTIZATION_SETTINGS = {"first_weight_bits": int, "out_weight_bits": int, "stream_bits": int,
                         "channel_scales": lambda v: v.lower() in ("1", "true", "yes")}


def parse_settings(settings, known: dict) -> dict:
    """key=value strings -> {key: value} for the keys of `known` (key -> parser); exits on any other key."""
    parsed = {}
    for setting in settings:
        key, _, value = setting.partition("=")
        if key not in known:
            sys.exit(f"{key!r} cannot be set here ({', '.join(known)})")
        parsed[key] = known[key](value)
    return parsed


def save(state: dict, target: str) -> None:
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    print(f"{target}: step {state['step']}, config {state['config']}")


def main(source: str, target: str, *settings: str) -> None:
    state = torch.load(source, weights_only=False, map_location="cpu")
    if any(k.endswith("scales") and v.abs().sum() > 0 for k, v in state["model"].items()):
        sys.exit(f"{source} is calibrated already: its quantization is fixed")
    state["config"].update(parse_settings(settings, QUANTIZATION_SETTINGS))
    save(state, target)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
