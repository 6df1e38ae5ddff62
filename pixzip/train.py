"""Training: random crops of the training photos, Adam with a cosine schedule, then a quantization-aware
phase so that the result exports to the exact integer model (pixzip.intnet).

The schedule runs on a budget of steps or of minutes; with minutes, the cosine follows elapsed time, so a
run given an hour anneals properly in an hour on whatever machine it lands on. The minutes are wall-clock
minutes, or (clock="cpu") this process's CPU minutes, all its threads together: a run on a shared machine,
stopped or starved for a while, then spends its budget only on the work it did.
"""
import ctypes
import gc
import math
import os
import sys
import time
from dataclasses import dataclass, asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from . import multiscale, registry
from .config import from_dict
from .pixelcnn import PixelCNN, PixelCNNConfig
from .predictor import image_residuals
from .image import IMAGE_SUFFIXES, load_image, to_pixels
from .widepng import WideImage


# Architecture name -> trainable float model: a view of pixzip.registry.ARCHITECTURES, where they are defined.
MODELS = {name: arch.model for name, arch in registry.ARCHITECTURES.items()}
arch_of = registry.arch_of  # a model config -> its architecture's name


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
    val_minutes: float = 10.0  # with a validation folder: validate this often, and at the end

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return from_dict(cls, d, "train config")


def find_images(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def load_dataset(folder: Path, channels: int, min_size: int) -> list[torch.Tensor]:
    """Every image of a folder as a (C, H, W) uint8 tensor."""
    try:
        paths = find_images(folder)
    except OSError as e:
        raise ValueError(f"cannot read the folder {folder}: {e.strerror or e}") from None
    if not paths:
        raise ValueError(f"no images in {folder} (looked for {' '.join(sorted(IMAGE_SUFFIXES))})")
    images = []
    for p in paths:
        try:
            image, _ = load_image(p)
            if isinstance(image, WideImage):
                image = image.colours_8bit()
            if image.mode not in ("L", "RGB"):  # training sees colours; alpha, palettes, 16 bits are dropped
                image = image.convert("RGB")
            pixels, mode = to_pixels(image)
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read training image {p}: {e}") from None
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


def nll_bits(net: torch.nn.Module, x: torch.Tensor, predictor: str) -> torch.Tensor:
    """Mean cost in bits per subpixel of x (B, C, H, W) under net (a PixelCNN, or one wrapped for DDP)."""
    logits = net(x)  # (B, C, 256, H, W); a multi-scale model's, a pair (pixzip.multiscale)
    if isinstance(logits, tuple):
        return multiscale.bits(logits, x, predictor) / x.numel()
    r = image_residuals(x, predictor)  # (B, C, H, W)
    return F.cross_entropy(logits.transpose(1, 2), r) / math.log(2)


def validate(model: PixelCNN, images: list[torch.Tensor]) -> tuple[float, str]:
    """Bits per subpixel on whole images (C, H, W): once the model is quantized, what files without the
    adaptive stage (compress --no-adapt, format 3) will really cost - the network's own quality - the ideal
    code length of the exact integer model's frequencies, computed by the encoder itself
    (tiles included); before that, the float model's NLL."""
    subpixels = sum(im.numel() for im in images)
    if model.quantized:
        from . import codec, registry

        arch = registry.ARCHITECTURES[arch_of(model.config)]
        m = registry.Model("validation", arch_of(model.config), Path("."), b"",
                           arch.network(model.config, arch.export(model)))
        bits, threads = 0.0, torch.get_num_threads()
        for im in images:
            pixels = im.permute(1, 2, 0).contiguous().numpy()  # (H, W, C) uint8
            bits += codec.encode_pixels(pixels, "RGB" if pixels.shape[2] == 3 else "L", m)[1]
        # numba's first parallel kernel in a process can leave OpenMP's thread count at numba's, and torch
        # would train on with that many (two runs side by side with --threads 1: 4.7 s a step, not 2.7).
        torch.set_num_threads(threads)
        return bits / subpixels, "integer model"
    device = next(model.parameters()).device
    with torch.no_grad():
        bits = sum(float(nll_bits(model, im[None].to(device).float(), model.config.predictor)) * im.numel()
                   for im in images)
    return bits / subpixels, "float model"


def save_checkpoint(path: Path, model: PixelCNN, opt, step: int, seconds: float, train: TrainConfig, log: list,
                    data: Path, world_size: int):
    state = {
        "arch": arch_of(model.config),
        "data": str(data),
        "config": model.config.to_dict(),
        "train": asdict(train),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "step": step,
        "seconds": seconds,
        "log": log,
        "world_size": world_size,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size): under torchrun (WORLD_SIZE > 1) joins the process group, gloo on CPUs, nccl
    on GPUs; otherwise (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if name != "cpu":
        raise ValueError(f"unknown device {name!r} (auto, cpu or cuda)")
    return torch.device("cpu")


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for reuse; returns whether it could (glibc only).

    A CPU training step allocates and frees tensors of ~100 MB (the logits alone are batch x channels x
    256 x crop^2 floats). By default glibc maps each such block afresh and unmaps it when freed, so every
    step faults them back in page by page and the kernel zeroes each page. Measured on 2 CPU cores (20 float
    steps of the default model, one thread): 24.7 s in the kernel and 32.2 s in user code by default, 2.6 s
    and 30.7 s with this. With mmap off and no trimming the heap keeps the blocks for the next step."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # <malloc.h>
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def learning_rate(tc: TrainConfig, frac: float, step: int, quantized: bool) -> float:
    """The schedule at fraction frac of the budget: warm-up, then a cosine from lr down to lr x
    final_lr_fraction over the float phase; in the quantization-aware phase (the last qat_fraction) a cosine
    from qat_lr down to a tenth of it."""
    if quantized:
        qfrac = (frac - (1 - tc.qat_fraction)) / tc.qat_fraction
        return tc.qat_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(max(qfrac, 0.0), 1.0))))
    ffrac = frac / (1 - tc.qat_fraction)
    cos = 0.5 * (1 + math.cos(math.pi * min(ffrac, 1.0)))
    return tc.lr * min(1.0, (step + 1) / tc.warmup_steps) * (tc.final_lr_fraction + (1 - tc.final_lr_fraction) * cos)


def start_quantization_aware(model, images: list[torch.Tensor], tc: TrainConfig, gen: torch.Generator,
                             dev: torch.device, world: int) -> torch.optim.Optimizer:
    """The switch to the quantization-aware phase: calibrate the activation scales on 8 batches of crops
    (process 0's, under torchrun), and a fresh Adam for the quantized model."""
    model.calibrate([random_crops(images, tc.batch, tc.crop, gen).to(dev) for _ in range(8)])
    if world > 1:
        for buffer in model.buffers():  # every process quantizes with process 0's scales
            dist.broadcast(buffer, 0)
    return torch.optim.Adam(model.parameters(), lr=tc.qat_lr)


def _start_or_resume(config: PixelCNNConfig, tc: TrainConfig, checkpoint: Path | None, gen: torch.Generator,
                     rank: int, dev: torch.device) -> tuple[PixelCNN, torch.optim.Optimizer, int, float, list]:
    """The model on dev and its optimizer, with the step, seconds and history to go on from: a new run, or
    the one the checkpoint holds if it is given and exists. A resumed run reseeds its crops with the step,
    so that a sitting does not draw again the crops its first sitting began with."""
    model = MODELS[arch_of(config)](config)
    step, seconds, history, state = 0, 0.0, [], None
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False, map_location="cpu")
        model = MODELS[arch_of(config)](type(config).from_dict(state["config"]))
        model.load_state_dict(state["model"])
        step, seconds, history = state["step"], state["seconds"], state["log"]
        gen.manual_seed(tc.seed + 1000 * rank + step)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=tc.qat_lr if model.quantized else tc.lr)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
    return model, opt, step, seconds, history


# What a time budget counts (train's clock): elapsed seconds, or the process's CPU seconds (all threads).
CLOCKS = {"wall": time.time, "cpu": time.process_time}


def _spent(step: int, seconds: float, budget: float | None, steps: int | None, world: int,
           dev: torch.device) -> float:
    """The fraction of the budget spent: seconds of `budget` seconds, or else step of `steps`. Under torchrun
    with a time budget the processes agree on the largest, so that every process takes the same steps."""
    frac = seconds / budget if budget is not None else step / steps
    if world > 1 and budget is not None:
        t = torch.tensor([frac], dtype=torch.float64, device=dev if dev.type == "cuda" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        frac = float(t)
    return frac


class _Report:
    """Process 0's account of a run as it trains: the progress bar; the history every checkpoint keeps
    (the smoothed training cost every 100 steps, and each validation) with its log lines; a validation every
    val_minutes and a checkpoint every checkpoint_minutes. Other processes keep a disabled bar only."""

    def __init__(self, tc: TrainConfig, history: list, log, val: Path | None, val_images: list | None,
                 checkpoint: Path, data: Path, world: int, shown: bool):
        self.tc, self.history, self.log, self.val, self.val_images = tc, history, log, val, val_images
        self.checkpoint_path, self.data, self.world = checkpoint, data, world
        self.bar = tqdm(total=100.0, unit="%", bar_format="{l_bar}{bar}| {n:.1f}% [{elapsed}<{remaining}{postfix}]",
                        disable=not shown or None, file=sys.stderr, dynamic_ncols=True)
        self.running = None  # the training cost (bpsp), an exponential average over about 50 steps
        self.last_checkpoint = time.time()
        self.last_val, self.val_note = time.time(), ""  # when it last validated, and what the bar says of it

    def after_step(self, model, opt, step: int, seconds: float, frac: float, lr: float, cost: float) -> None:
        """Step `step` is done: it cost `cost` bpsp, at fraction frac of the budget with learning rate lr."""
        tc = self.tc
        self.running = cost if self.running is None else 0.98 * self.running + 0.02 * cost
        self.bar.n = round(100 * min(frac, 1.0), 1)
        self.bar.set_postfix_str(f"step {step}, train {self.running:.3f} bpsp{', ' if self.val_note else ''}"
                                 f"{self.val_note}", refresh=False)
        self.bar.refresh()
        if step % 100 == 0:
            self.history.append({"step": step, "seconds": round(seconds, 1),
                                 "pixels": step * tc.batch * tc.crop**2 * self.world,
                                 "train_bpsp": round(self.running, 4), "quantized": model.quantized})
            self.log(f"step {step} {seconds / 60:.1f} min  lr {lr:.2e}  train {self.running:.3f} bpsp  "
                     f"{100 * frac:.1f}%")
        if self.val_images and time.time() - self.last_val > tc.val_minutes * 60:
            self.validation(model, step, seconds)
        if time.time() - self.last_checkpoint > tc.checkpoint_minutes * 60:
            self.checkpoint(model, opt, step, seconds)

    def validation(self, model, step: int, seconds: float) -> None:
        bpsp, kind = validate(model, self.val_images)
        self.history.append({"step": step, "seconds": round(seconds, 1), "val_bpsp": round(bpsp, 4), "val_of": kind})
        self.log(f"step {step}: validation {bpsp:.4f} bpsp ({kind}, whole images of {self.val})")
        self.last_val, self.val_note = time.time(), f"val {bpsp:.3f} ({kind.split()[0]})"

    def checkpoint(self, model, opt, step: int, seconds: float) -> None:
        save_checkpoint(self.checkpoint_path, model, opt, step, seconds, self.tc, self.history, self.data, self.world)
        self.last_checkpoint = time.time()

    def finish(self, model, opt, step: int, seconds: float) -> None:
        """The end of a sitting, or of the run: a validation (with a validation folder), then a checkpoint."""
        if self.val_images:
            self.validation(model, step, seconds)
        self.checkpoint(model, opt, step, seconds)


def _leave_process_group() -> None:
    """The end of a run under torchrun, once the caller has let go of its DistributedDataParallel wrapper:
    the wrapper holds the process group and its gloo threads, so it is freed before the group, while the
    interpreter is fully alive - a group freed during interpreter shutdown can abort the process
    ("terminate called without an active exception", seen once in CI on process 1)."""
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


def train(
    data: Path,
    out: Path,
    config: PixelCNNConfig,
    train_config: TrainConfig = TrainConfig(),
    minutes: float | None = None,
    steps: int | None = None,
    resume: bool = False,
    log=print,
    val: Path | None = None,
    device: str = "cpu",
    progress_bar: bool = False,
    stop_after: float | None = None,
    clock: str = "wall",
) -> Path:
    """Train a model (the architecture of `config`) on the images in `data`; checkpoints go to
    out/checkpoint.pt. Returns its path.

    Under torchrun each process trains on its own random crops (seed + rank) with DistributedDataParallel
    averaging the gradients, so the effective batch is world size x batch; process 0 validates, logs and
    writes checkpoints, and the time budget follows the slowest process so that all stop at the same step.
    stop_after: minutes after which this call stops (with a checkpoint and a validation) though the budget,
    and so the schedule, go on: the next sitting resumes where it stopped (a sitting's minutes are wall-clock).
    clock: what the time budget counts, "wall" (elapsed time) or "cpu" (this process's CPU time)."""
    tc = train_config
    if (minutes is None) == (steps is None):
        raise ValueError("give exactly one of a time budget (minutes) and a step budget (steps)")
    if clock not in CLOCKS:
        raise ValueError(f"unknown clock {clock!r}: one of {', '.join(CLOCKS)}")
    now = CLOCKS[clock]
    dev = resolve_device(device)
    rank, world = _distributed(dev)
    if dev.type == "cpu":
        keep_freed_memory()
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    torch.manual_seed(tc.seed)
    gen = torch.Generator().manual_seed(tc.seed + 1000 * rank)
    images = load_dataset(data, config.channels, tc.crop)
    val_images = load_dataset(val, config.channels, 1) if val is not None and rank == 0 else None
    model, opt, step, seconds, history = _start_or_resume(config, tc, ckpt_path if resume else None, gen, rank, dev)
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model)
    budget = minutes * 60 if minutes is not None else None
    report = _Report(tc, history, log, val, val_images, ckpt_path, data, world, progress_bar and rank == 0)
    start, sitting = now() - seconds, time.time()
    while (frac := _spent(step, seconds, budget, steps, world, dev)) < 1:
        if stop_after is not None and time.time() - sitting > stop_after * 60:
            log(f"step {step}: stopping after {stop_after:g} minutes of this sitting, {100 * frac:.1f}% of the budget")
            break
        if not model.quantized and frac >= 1 - tc.qat_fraction:
            opt = start_quantization_aware(model, images, tc, gen, dev, world)
            scales = [round(v, 6) for name, b in model.named_buffers()
                      if name.endswith("scales") and not name.endswith("stream_scales") for v in b.tolist()]
            log(f"step {step}: calibrated activation scales {scales}, quantization-aware from here")
        lr = learning_rate(tc, frac, step, model.quantized)
        for g in opt.param_groups:
            g["lr"] = lr
        x = random_crops(images, tc.batch, tc.crop, gen).to(dev)
        loss = nll_bits(net, x, config.predictor)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        seconds = now() - start
        cost = loss.item()
        if rank == 0:
            report.after_step(model, opt, step, seconds, frac, lr, cost)
    report.bar.close()
    if rank == 0:
        report.finish(model, opt, step, seconds)
    if world > 1:
        net = loss = None  # the DDP wrapper goes before the process group (_leave_process_group)
        _leave_process_group()
    return ckpt_path
