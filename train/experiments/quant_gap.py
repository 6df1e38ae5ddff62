"""Where the quantization gap comes from: a float PixelCNN checkpoint (before its quantization-aware phase)
evaluated with parts of the integer arithmetic simulated, on whole validation images.

    python train/experiments/quant_gap.py CHECKPOINT [VAL_DIR]
    python train/experiments/quant_gap.py --integer CHECKPOINT [VAL_DIR]

Each row quantizes some of: the weights (int8 per output channel as pixzip.pixelcnn.MaskedConv, or 15-bit
for a wide first layer), the output layer (power-of-two logit unit), the activations (int8 at the 99.99th
percentile of two validation images, the stream with one scale or one per feature, or 16-bit with its relu
requantized to int8). No quantization-aware training: these are the costs that training then has to
recover (docs/models.md, "The quantization gap").

--integer measures the real thing for the quantizations pixzip implements: the checkpoint calibrated as
`pixzip train` calibrates (8 batches of random training crops) with each setting of INTEGER_ROWS, exported,
and the exact integer model's code length on the validation images (pixzip.train.validate: tiles and
per-tile sharpness included, what format 3 files cost).
"""
import math
import sys
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from pixzip.pixelcnn import INPUT_SCALE, PixelCNN, PixelCNNConfig
from pixzip.predictor import image_residuals
from pixzip.train import TrainConfig, load_dataset, random_crops, validate


def quantize_weight(conv, weight_max: int) -> torch.Tensor:
    w = conv.weight * conv.mask
    s = w.abs().amax(dim=(1, 2, 3)).clamp_min(1e-12) / weight_max  # (out,) one scale per output
    return torch.floor(w / s[:, None, None, None] + 0.5) * s[:, None, None, None]


def quantize(v: torch.Tensor, top, levels: int, signed: bool) -> torch.Tensor:
    s = top / levels
    return torch.floor(v / s + 0.5).clamp(-levels if signed else 0, levels) * s


class Simulation:
    """The float network with chosen parts quantized (`run`), and the activation ranges it calibrates."""

    def __init__(self, model: PixelCNN, calibration: list[torch.Tensor]):
        self.model = model
        self.samples: dict[str, list] = {}
        self.options: dict = {}
        with torch.no_grad():
            for x in calibration:
                self.forward(x)
        self.tops = {}
        for name, values in self.samples.items():
            v = torch.cat(values, dim=1)  # (features, samples)
            v = v[:, torch.randperm(v.shape[1])[: 2_000_000 // len(v)]]
            self.tops[name] = float(torch.quantile(v.flatten(), 0.9999))
            if name == "stream":
                per_feature = torch.quantile(v, 0.9999, dim=1).clamp_min(self.tops[name] / 16)
                self.tops["stream features"] = per_feature[None, :, None, None]
        self.samples = None

    def conv(self, conv, a: torch.Tensor, first: bool = False) -> torch.Tensor:
        o = self.options
        bits = o.get("first weight bits", 8) if first else 8
        which = o.get("weights")  # None, "all", "first" or "rest"
        quantized = which == "all" or which == ("first" if first else "rest")
        w = quantize_weight(conv, 2 ** (bits - 1) - 1) if quantized else conv.weight * conv.mask
        return F.conv2d(a, w, conv.bias, padding=conv.kernel // 2)

    def act(self, name: str, v: torch.Tensor, signed: bool) -> torch.Tensor:
        if self.samples is not None:
            self.samples.setdefault(name, []).append(v.abs().transpose(0, 1).flatten(1)[:, ::7])
            return v
        kind = "stream" if name in ("stream", "stream relu") else "other"
        if kind not in self.options.get("activations", ()):
            return v
        if kind == "stream":
            top = self.tops["stream features" if self.options.get("per feature") else "stream"]
        else:
            top = self.tops[name]
        wide = name == "stream" and self.options.get("stream bits") == 16
        return quantize(v, top, 32767 if wide else 127, signed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        h = self.act("stream", self.conv(m.first, m.network_inputs(x) * INPUT_SCALE, first=True), True)
        relu = lambda h: (self.act("stream relu", F.relu(h), False) if self.options.get("stream bits") == 16
                          else F.relu(h))
        for b in range(m.config.blocks):
            v = self.act(f"inner{b}", F.relu(self.conv(m.inner[b], relu(h))), False)
            h = self.act("stream", h + self.conv(m.outer[b], v), True)
        o = self.act("head", F.relu(self.conv(m.head, relu(h))), False)
        if self.options.get("output layer") and self.samples is None:
            s_o = self.tops["head"] / 127
            w_int, b_int, k = m.out.logit_params(s_o)
            logits = F.conv2d(o, w_int * (2.0**-k / s_o), b_int * 2.0**-k)
        else:
            logits = F.conv2d(o, m.out.weight * m.out.mask, m.out.bias)
        return logits.view(x.shape[0], x.shape[1], 256, *x.shape[2:])

    def bpsp(self, images: list[torch.Tensor], **options) -> float:
        self.options = options
        bits = subpixels = 0
        with torch.no_grad():
            for im in images:
                x = im[None].float()
                r = image_residuals(x, self.model.config.predictor)
                bits += float(F.cross_entropy(self.forward(x).transpose(1, 2), r, reduction="sum")) / math.log(2)
                subpixels += x.numel()
        return bits / subpixels


ROWS = [
    ("float", {}),
    ("int8 weights, every layer", {"weights": "all"}),
    ("int8 weights, first layer only", {"weights": "first"}),
    ("int8 weights, all but the first layer", {"weights": "rest"}),
    ("integer output layer only", {"output layer": True}),
    ("int8 activations, stream only", {"activations": ["stream"]}),
    ("int8 activations, all but the stream", {"activations": ["other"]}),
    ("everything int8 (the earlier default's arithmetic)",
     {"weights": "all", "output layer": True, "activations": ["stream", "other"]}),
    ("... with a 15-bit first layer",
     {"weights": "all", "first weight bits": 15, "output layer": True, "activations": ["stream", "other"]}),
    ("... and per-feature stream scales (the new default's)",
     {"weights": "all", "first weight bits": 15, "output layer": True, "activations": ["stream", "other"],
      "per feature": True}),
    ("... and a 16-bit stream (its relu int8)",
     {"weights": "all", "first weight bits": 15, "output layer": True, "activations": ["stream", "other"],
      "per feature": True, "stream bits": 16}),
]


INTEGER_ROWS = [
    ("int8 everywhere", {"first_weight_bits": 8, "channel_scales": False, "stream_bits": 8, "out_weight_bits": 8}),
    ("15-bit first layer, per-feature stream scales",
     {"first_weight_bits": 15, "channel_scales": True, "stream_bits": 8, "out_weight_bits": 8}),
    ("... and a 16-bit stream",
     {"first_weight_bits": 15, "channel_scales": True, "stream_bits": 16, "out_weight_bits": 8}),
    ("... and a 12-bit output layer",
     {"first_weight_bits": 15, "channel_scales": True, "stream_bits": 16, "out_weight_bits": 12}),
]


def load_float(checkpoint: str, **settings) -> tuple[PixelCNN, dict]:
    state = torch.load(checkpoint, weights_only=False, map_location="cpu")
    model = PixelCNN(replace(PixelCNNConfig.from_dict(state["config"]), **settings))
    model.load_state_dict(state["model"])
    if model.quantized:
        sys.exit(f"{checkpoint} is calibrated already: give a checkpoint from before its quantization-aware phase")
    return model, state


def integer_rows(checkpoint: str, val: str = "../shared/data/val") -> None:
    images = load_dataset(Path(val), 3, 1)
    print(f"{checkpoint}, calibrated, not trained: the exact integer model on whole images of {val}\n")
    print("| quantization | val bpsp |\n|---|---:|")
    for name, settings in INTEGER_ROWS:
        model, state = load_float(checkpoint, **settings)
        tc = TrainConfig.from_dict(state["train"])
        gen = torch.Generator().manual_seed(tc.seed)
        torch.manual_seed(tc.seed)  # calibration subsamples the activations at random
        train = load_dataset(Path(state.get("data", "../shared/data/train")), 3, tc.crop)  # older: no "data"
        model.calibrate([random_crops(train, tc.batch, tc.crop, gen) for _ in range(8)])
        print(f"| {name} | {validate(model, images)[0]:.3f} |", flush=True)


def main(checkpoint: str, val: str = "../shared/data/val") -> None:
    torch.set_num_threads(2)
    model, state = load_float(checkpoint)
    images = load_dataset(Path(val), 3, 1)
    sim = Simulation(model, [im[None].float() for im in images[:2]])
    print(f"{checkpoint} (step {state['step']}), whole images of {val}\n")
    print("| quantized | val bpsp |\n|---|---:|")
    for name, options in ROWS:
        print(f"| {name} | {sim.bpsp(images, **options):.3f} |", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--integer"]:
        integer_rows(*sys.argv[2:])
    else:
        main(*sys.argv[1:])
