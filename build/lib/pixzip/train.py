"""Training: random crops of the training photos, Adam with a cosine schedule, then a quantization-aware
phase so that the result exports to the exact integer model (pixzip.intnet).

The schedule runs on a budget of steps or of minutes; with minutes, the cosine follows elapsed time, so a
run given an hour anneals properly in an hour on whatever machine it lands on.
"""
import json
import math
import os
import sys
import time
from dataclasses import dataclass, asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .pixelcnn import PixelCNN, PixelCNNConfig
from .predictor import image_residuals
from .image import load_pixels


@dataclass(frozen=True)
class TrainConfig:
    crop: int = 48  # square random crops
    batch: int = 16
    lr: float = 2e-3
    final_lr_fraction: float = 0.02  # cosine decays to lr * this
    warmup_steps: int = 200
    qat_fraction: float = 0.2  # last part of the budget trains with quantization on
    qat_lr: float = 3e-4
    seed: int = 0
    checkpoint_minutes: float = 5.0


def find_images(folder: Path) -> list[Path]:
    exts = {".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp", ".jpg", ".jpeg"}
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in exts)


def load_dataset(folder: Path, channels: int, min_size: int) -> list[torch.Tensor]:
    """Every image of a folder as a (C, H, W) uint8 tensor."""
    paths = find_images(folder)
    if not paths:
        raise ValueError(f"no images in {folder}")
    images = []
    for p in paths:
        pixels, mode = load_pixels(p)
        if (mode == "RGB") != (channels == 3):
            pixels = np.repeat(pixels, 3, axis=2) if channels == 3 else pixels[:, :, :1]
        if min(pixels.shape[:2]) < min_size:
            raise ValueError(f"{p} is {pixels.shape[1]}x{pixels.shape[0]}, smaller than the {min_size}-pixel crop")
        images.append(torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))))
    return images


def random_crops(images: list[torch.Tensor], n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """n crops (n, C, size, size), images drawn in proportion to their area, half of them mirrored."""
    areas = torch.tensor([im.shape[1] * im.shape[2] for im in images], dtype=torch.float)
    which = torch.multinomial(areas, n, replacement=True, generator=gen)
    crops = []
    for k in which.tolist():
        im = images[k]
        y = int(torch.randint(0, im.shape[1] - size + 1, (1,), generator=gen))
        x = int(torch.randint(0, im.shape[2] - size + 1, (1,), generator=gen))
        crop = im[:, y : y + size, x : x + size]
        if torch.rand(1, generator=gen) < 0.5:
            crop = crop.flip(2)
        crops.append(crop)
    return torch.stack(crops)


def nll_bits(model: PixelCNN, x: torch.Tensor) -> torch.Tensor:
    """Mean cost in bits per subpixel of x (B, C, H, W) under the model."""
    r = image_residuals(x, model.config.predictor)  # (B, C, H, W)
    logits = model(x)  # (B, C, 256, H, W)
    return F.cross_entropy(logits.transpose(1, 2), r) / math.log(2)


def save_checkpoint(path: Path, model: PixelCNN, opt, step: int, seconds: float, train: TrainConfig, log: list,
                    data: Path):
    state = {
        "data": str(data),
        "config": model.config.to_dict(),
        "train": asdict(train),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "step": step,
        "seconds": seconds,
        "log": log,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(
    data: Path,
    out: Path,
    config: PixelCNNConfig,
    train_config: TrainConfig = TrainConfig(),
    minutes: float | None = None,
    steps: int | None = None,
    resume: bool = False,
    log=print,
) -> Path:
    """Train a PixelCNN on the images in `data`; checkpoints go to out/checkpoint.pt. Returns its path."""
    tc = train_config
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    torch.manual_seed(tc.seed)
    gen = torch.Generator().manual_seed(tc.seed)
    images = load_dataset(data, config.channels, tc.crop)
    model = PixelCNN(config)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    step, seconds, history = 0, 0.0, []
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        model = PixelCNN(PixelCNNConfig.from_dict(state["config"]))
        model.load_state_dict(state["model"])
        opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
        opt.load_state_dict(state["optimizer"])
        step, seconds, history = state["step"], state["seconds"], state["log"]
        gen.manual_seed(tc.seed + step)
    budget = minutes * 60 if minutes is not None else None

    def progress() -> float:
        return seconds / budget if budget is not None else step / steps

    start, last_ckpt, running = time.time() - seconds, time.time(), None
    while progress() < 1:
        frac = progress()
        if not model.quantized and frac >= 1 - tc.qat_fraction:
            model.calibrate([random_crops(images, tc.batch, tc.crop, gen) for _ in range(8)])
            opt = torch.optim.Adam(model.parameters(), lr=tc.qat_lr)
            log(f"step {step}: calibrated activation scales {model.scales.tolist()}, quantization-aware from here")
        if model.quantized:
            qfrac = (frac - (1 - tc.qat_fraction)) / tc.qat_fraction
            lr = tc.qat_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(qfrac, 1.0))))
        else:
            ffrac = frac / (1 - tc.qat_fraction)
            cos = 0.5 * (1 + math.cos(math.pi * min(ffrac, 1.0)))
            lr = tc.lr * min(1.0, (step + 1) / tc.warmup_steps) * (tc.final_lr_fraction + (1 - tc.final_lr_fraction) * cos)
        for g in opt.param_groups:
            g["lr"] = lr
        x = random_crops(images, tc.batch, tc.crop, gen)
        loss = nll_bits(model, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        seconds = time.time() - start
        value = loss.item()
        running = value if running is None else 0.98 * running + 0.02 * value
        if step % 100 == 0:
            history.append({"step": step, "seconds": round(seconds, 1), "pixels": step * tc.batch * tc.crop**2,
                            "train_bpsp": round(running, 4), "quantized": model.quantized})
            log(f"step {step} {seconds / 60:.1f} min  lr {lr:.2e}  train {running:.3f} bpsp  {100 * progress():.1f}%")
        if time.time() - last_ckpt > tc.checkpoint_minutes * 60:
            save_checkpoint(ckpt_path, model, opt, step, seconds, tc, history, data)
            last_ckpt = time.time()
    save_checkpoint(ckpt_path, model, opt, step, seconds, tc, history, data)
    return ckpt_path


if __name__ == "__main__":  # python -m pixzip.train DATA OUT MINUTES [key=value ...]; see also `pixzip train`
    overrides = dict(a.split("=", 1) for a in sys.argv[4:])
    cfg = PixelCNNConfig.from_dict({k: json.loads(v) if v[:1].isdigit() or v in ("true", "false") else v
                                    for k, v in overrides.items()})
    torch.set_num_threads(int(os.environ.get("PIXZIP_THREADS", "2")))
    train(Path(sys.argv[1]), Path(sys.argv[2]), cfg, minutes=float(sys.argv[3]), resume=True)
