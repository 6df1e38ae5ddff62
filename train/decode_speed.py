"""Where decoding time goes: decode seconds per megapixel of the default model's architecture with 0 to 5
residual blocks (random calibrated weights: speed does not depend on the weights' values, only the coder's
share a little on the bits), and the default model's decode split by function (cProfile). Run from the
repository root on a quiet machine (docs/benchmarks.md, "Where decoding time goes"):

    python train/decode_speed.py [IMAGE]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pixzip import codec, registry  # noqa: E402
from pixzip.image import load_pixels  # noqa: E402
from pixzip.train import MODELS  # noqa: E402

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


def main(image: str = IMAGE) -> None:
    pixels = load_pixels(Path(image))[0]
    print(f"{image}: {pixels.shape[1]} x {pixels.shape[0]}, {torch.get_num_threads()} threads\n")
    print("| residual blocks | encode s/MP | decode s/MP |\n|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for blocks in range(6):
            enc, dec = seconds_per_mp(pixels, random_model(Path(folder), blocks))
            print(f"| {blocks} | {enc:.2f} | {dec:.2f} |", flush=True)
    default = registry.resolve(None)
    enc, dec = seconds_per_mp(pixels, default)
    print(f"\nthe default model {default.name}-{default.sha256.hex()[:8]}: encode {enc:.2f}, decode {dec:.2f} s/MP")
    data = codec.compress_pixels(pixels, "RGB", default)[0]
    profile = cProfile.Profile()
    profile.runcall(codec.decompress_pixels, data)
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(12)
    print(out.getvalue())


if __name__ == "__main__":
    main(*sys.argv[1:])
