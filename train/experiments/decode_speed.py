"""Where decoding time goes: encode and decode seconds per megapixel of the default model's architecture
with 0, 1, 3 and 5 residual blocks, with and without joint_channels (random calibrated weights: speed does not
depend on the weights' values, only the coder's share a little on the bits), and the default model's decode
split by function (cProfile). Run from the repository root on a quiet machine (docs/benchmarks.md,
"Where decoding time goes"):

    python train/experiments/decode_speed.py [IMAGE]
"""
import cProfile
import io
import pstats
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from pixzip import codec, coder, registry, softmax
from pixzip.image import load_pixels
from pixzip.train import MODELS

IMAGE = "../shared/data/val/the-mouse.png"


def random_model(folder: Path, blocks: int, joint: bool = False) -> registry.Model:
    """The default's configuration with `blocks` blocks (and joint_channels if joint), random weights
    calibrated on smooth random images."""
    torch.manual_seed(0)
    cfg = replace(registry.resolve(None).config, blocks=blocks, joint_channels=joint)
    model = MODELS["pixelcnn"](cfg)
    base = torch.randint(0, 256, (8, 3, 6, 6)).float()
    x = torch.nn.functional.interpolate(base, size=(48, 48), mode="bilinear", align_corners=False)
    model.calibrate([(x + torch.randint(-8, 9, x.shape)).clamp(0, 255).round()])
    name = f"blocks{blocks}{'-joint' if joint else ''}"
    file = folder / f"{name}.npz"
    registry.save_model(file, name, "pixelcnn", cfg, registry.ARCHITECTURES["pixelcnn"].export(model))
    return registry.load_file(file)


def seconds_per_mp(pixels: np.ndarray, model: registry.Model) -> tuple[float, float]:
    """Best of two (encode, decode) seconds per megapixel, after a warm-up."""
    mp = pixels.shape[0] * pixels.shape[1] / 1e6
    data = codec.compress_pixels(pixels, "RGB", model)[0]
    codec.decompress_pixels(data, models=model)
    enc, dec = [], []
    for _ in range(2):
        t = time.perf_counter()
        data = codec.compress_pixels(pixels, "RGB", model)[0]
        enc.append(time.perf_counter() - t)
        t = time.perf_counter()
        codec.decompress_pixels(data, models=model)
        dec.append(time.perf_counter() - t)
    return min(enc) / mp, min(dec) / mp


def output_floor(net, positions: int = 64 * 26) -> tuple[float, float]:
    """Seconds per megapixel (3 subpixels a pixel) of the output alone, no network: the fused output layer
    and softmax (pixzip.softmax) and constriction's decoder, in calls of `positions` subpixels (the default
    decoder's step: 64 tiles x about 26 positions). Random head outputs; the coded symbols are all near the
    prediction, as in photos."""
    rng = np.random.default_rng(0)
    features = rng.integers(0, 60, (positions, net.config.hidden), dtype=np.int8)
    groups = np.zeros(positions, dtype=np.int64)
    calls = 3 * 10**6 // positions
    freqs = softmax.frequencies(features, groups, net.out_weight, net.out_bias, net.table)
    enc = coder.Encoder()
    for _ in range(calls):
        enc.push(rng.integers(0, 3, positions).astype(np.int32), freqs)
    data = enc.finish()
    start = time.perf_counter()
    for _ in range(calls):
        softmax.frequencies(features, groups, net.out_weight, net.out_bias, net.table)
    middle = time.perf_counter()
    dec = coder.Decoder(data)
    for _ in range(calls):
        dec.pop(freqs)
    return middle - start, time.perf_counter() - middle


def main(image: str = IMAGE) -> None:
    pixels = load_pixels(Path(image))[0]
    print(f"{image}: {pixels.shape[1]} x {pixels.shape[0]}, {torch.get_num_threads()} threads\n")
    print("| residual blocks | encode s/MP | decode s/MP | joint_channels: encode | decode |\n"
          "|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for blocks in (0, 1, 3, 5):
            times = [seconds_per_mp(pixels, random_model(Path(folder), blocks, joint)) for joint in (False, True)]
            print(f"| {blocks} | " + " | ".join(f"{t:.2f}" for pair in times for t in pair) + " |", flush=True)
    default = registry.resolve(None)
    enc, dec = seconds_per_mp(pixels, default)
    print(f"\nthe default model {default.name}-{default.sha256.hex()[:8]}: encode {enc:.2f}, decode {dec:.2f} s/MP")
    soft, decoding = output_floor(default.network)
    print(f"its output alone, no network: softmax {soft:.2f} s/MP, constriction's decoder {decoding:.2f} s/MP")
    data = codec.compress_pixels(pixels, "RGB", default)[0]
    profile = cProfile.Profile()
    profile.runcall(codec.decompress_pixels, data)
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(12)
    print(out.getvalue())


if __name__ == "__main__":
    main(*sys.argv[1:])
