"""A trainable checkpoint from a PixelCNN model file: float weights and activation scales whose
quantization-aware model computes exactly the file's integer network, so that `pixzip train --resume` can go
on training a shipped model (its float checkpoints are not shipped), or train a variant of it.

    python train/dequantize.py MODEL.npz OUT_CHECKPOINT [--float] [key=value ...]

key=value changes the config on the way (e.g. joint_channels=true: then the first layer's centre taps,
which the joint masks forbid, are dropped, and the weights the new masks allow start at zero). --float
forgets the activation scales: the run then begins with a float phase and calibrates anew.

An integer layer stores weight w, bias b, multiplier M and shift S: y = (w x + b) M / 2^S in the units of its
output. Any choice of the activations' float scales gives float weights that quantize back to the same
integers (pixzip.pixelcnn.MaskedConv.integer_params); the scales are chosen here so that each layer's float
weights have the root-mean-square of their He initialization, as if they had been trained from it.
"""
import math
import sys
from pathlib import Path

import numpy as np
import torch

from pixzip import registry
from pixzip.pixelcnn import INPUT_SCALE, STREAM_FINE_SHIFT, PixelCNN, PixelCNNConfig
from pixzip.train import TrainConfig

SETTINGS = {"joint_channels": lambda v: v.lower() in ("1", "true", "yes")}


def parse_settings(settings) -> dict:
    """key=value strings -> {key: value} for the keys of SETTINGS; exits on any other key."""
    parsed = {}
    for setting in settings:
        key, _, value = setting.partition("=")
        if key not in SETTINGS:
            sys.exit(f"{key!r} cannot be set here ({', '.join(SETTINGS)})")
        parsed[key] = SETTINGS[key](value)
    return parsed


def _ratio(arrays: dict, name: str) -> np.ndarray:
    """M / 2^S per output: the layer's accumulator unit over its output unit."""
    return arrays[f"{name}.multiplier"] / 2.0 ** int(arrays[f"{name}.shift"])


def _out_scale(arrays: dict, name: str, s_in: float) -> float:
    """The output scale that gives layer `name`, reading inputs in units of s_in, float weights of He RMS."""
    w = arrays[f"{name}.weight"].astype(np.float64)
    w = w * _ratio(arrays, name)[:, None, None, None]  # in units of s_out / s_in
    nonzero = w[w != 0]
    fan_in = max(1, int(np.count_nonzero(w) / w.shape[0]))
    return s_in * math.sqrt(2.0 / fan_in) / float(np.sqrt(np.mean(nonzero**2)))


def _set(conv, arrays: dict, name: str, s_in: float, s_out) -> None:
    """conv's float weight and bias from layer `name`'s integers, inputs in units of s_in, outputs of s_out."""
    s_acc = _ratio(arrays, name) * s_out  # (out,) the accumulator's unit
    w = arrays[f"{name}.weight"] * (s_acc / s_in)[:, None, None, None]
    conv.weight.data.copy_(torch.from_numpy(w))
    conv.bias.data.copy_(torch.from_numpy(arrays[f"{name}.bias"] * s_acc))


def dequantize(arrays: dict, config: PixelCNNConfig, new_config: PixelCNNConfig) -> PixelCNN:
    """A calibrated PixelCNN with new_config (same shapes) computing the integer model of arrays/config."""
    if config.stream_bits != 16 or not config.channel_scales:
        raise ValueError("written for a 16-bit stream with per-feature scales (the shipped defaults)")
    model = PixelCNN(new_config)
    # The stream's relu has unit s (what layers read); the stream itself s / 2^8 (what layers add into).
    fine = 2.0**-STREAM_FINE_SHIFT
    s = _out_scale(arrays, "first", INPUT_SCALE) / fine
    _set(model.first, arrays, "first", INPUT_SCALE, s * fine)
    inner = []
    for b in range(config.blocks):
        inner.append(_out_scale(arrays, f"inner{b}", s))
        _set(model.inner[b], arrays, f"inner{b}", s, inner[b])
        _set(model.outer[b], arrays, f"outer{b}", inner[b], s * fine)
    s_o = _out_scale(arrays, "head", s)
    _set(model.head, arrays, "head", s, s_o)
    unit = 2.0 ** -int(arrays["out.shift"])
    model.out.weight.data.copy_(torch.from_numpy(arrays["out.weight"] * unit / s_o))
    model.out.bias.data.copy_(torch.from_numpy(arrays["out.bias"] * unit))
    model.scales.copy_(torch.tensor([s] + inner + [s_o]))
    model.stream_scales.fill_(s)
    return model


def main(source: str, target: str, *settings: str) -> None:
    as_float = "--float" in settings
    settings = [s for s in settings if s != "--float"]
    m = registry.load_file(Path(source))
    if m.arch != "pixelcnn":
        sys.exit(f"{source} is a {m.arch} model: only pixelcnn models can be dequantized")
    config = PixelCNNConfig.from_dict({**m.config.to_dict(), **parse_settings(settings)})
    model = dequantize(m.network.arrays, m.config, config)
    if as_float:
        model.scales.zero_()
        model.stream_scales.zero_()
    opt = torch.optim.Adam(model.parameters(), lr=TrainConfig().qat_lr)
    state = {"arch": "pixelcnn", "data": f"dequantized from {source}", "config": config.to_dict(),
             "train": {}, "model": model.state_dict(), "optimizer": opt.state_dict(), "step": 0, "seconds": 0.0,
             "log": [{"dequantized_from": source, "sha256": m.sha256.hex()}], "world_size": 1}
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    print(f"{target}: step {state['step']}, config {state['config']}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
