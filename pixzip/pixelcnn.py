"""PixelCNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", sections 3.5 and 3.4): the float
model that is trained, with the quantization-aware mode whose arithmetic the integer model reproduces.

Data flow (B batch, C image channels, F hidden features split into C channel groups, H x W pixels):
    x (B, C, H, W) uint8
    -> 7x7 mask-A conv                          -> h  (B, F, H, W)   residual stream
    -> blocks x [relu, 3x3 mask-B conv, relu, 1x1 mask-B conv, add to h]
    -> relu, 1x1 mask-B conv, relu              -> o  (B, F, H, W)
    -> 1x1 conv, channel group g -> 256 logits  -> logits (B, C, 256, H, W), integers x 2^-k nats
The softmax is over residual symbols r = (x - pred) mod 256 (pixzip.predictor).

Masks (paper section 3.4): the F features are split into C groups (R, G, B); group g at pixel (i, j)
sees every feature at rows above and to the left, and at (i, j) itself the groups before g (mask A, first
layer) or up to g (mask B). So R's distribution depends on earlier pixels only, G's also on R, B's on R, G.
With joint_channels there is one group up to the head: every feature sees earlier pixels only (mask A has no
centre tap), and channel g's logits read the head's g-th F / C features; G and B see R (and G) only through
the predictor.

Quantization-aware mode (Balle, Johnston, Minnen 2019, "Integer networks"): activations are integers in
fixed ranges with calibrated scales, weights int8 per output channel, each layer's accumulator is rescaled
by an integer multiplier and shift - exactly what pixzip.intnet computes, with straight-through gradients.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# The integer format's constants, masks and config live in pixzip.intformat (decoding needs them, not this
# module); imported here under their old names too, which training code and scripts use.
from .intformat import (ACT_MAX, INPUT_SCALE, MAX_LOGIT_SHIFT, MULTIPLIER_BITS, STREAM16_MAX,  # noqa: F401
                        STREAM_FINE_SHIFT, WEIGHT_MAX, PixelCNNConfig, causal_mask)
from .predictor import image_predictions


def round_ste(v: torch.Tensor) -> torch.Tensor:
    """floor(v + 0.5) forward (the integer model's rounding), identity gradient."""
    return v + (torch.floor(v + 0.5) - v).detach()


def requant_multiplier(ratio: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Integer (M, S) with M / 2^S ~= ratio per output channel, M < 2^MULTIPLIER_BITS."""
    top = float(ratio.max())
    shift = MULTIPLIER_BITS - 1 - math.ceil(math.log2(top)) if top > 0 else MULTIPLIER_BITS
    shift = max(shift, 0)
    return torch.floor(ratio.double() * 2.0**shift + 0.5).long(), shift


class MaskedConv(nn.Module):
    def __init__(self, in_features: int, out_features: int, kernel: int, groups: int, mask: str,
                 weight_max: int = WEIGHT_MAX):
        super().__init__()
        self.kernel = kernel
        self.weight_max = weight_max  # the integer weights' largest magnitude
        self.weight = nn.Parameter(torch.empty(out_features, in_features, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.register_buffer("mask", causal_mask(out_features, in_features, kernel, groups, mask))
        fan_in = max(float(self.mask[0].sum()), 1.0)
        nn.init.normal_(self.weight, std=math.sqrt(2.0 / fan_in))

    def integer_params(self, s_in, s_out):
        """Integer weight (out, in, k, k), bias (out,), multiplier (out,), shift - what the integer model
        uses. s_in: the input's scale, a float or one per input feature (in,), which is then folded into
        the weights; s_out a float or one per output (out,). The float scales are detached: gradients pass
        straight through the rounding."""
        w = self.weight * self.mask
        if isinstance(s_in, torch.Tensor):  # w in units of the integer inputs
            w = w * s_in[None, :, None, None]
        s_w = (w.detach().abs().amax(dim=(1, 2, 3)).clamp_min(1e-12) / self.weight_max)  # (out,)
        w_int = round_ste(w / s_w[:, None, None, None])
        s_acc = s_w if isinstance(s_in, torch.Tensor) else s_in * s_w  # (out,) the accumulator's unit
        b_int = round_ste(self.bias / s_acc)
        m, shift = requant_multiplier(s_acc / s_out)
        return w_int, b_int, m, shift

    def logit_params(self, s_in: float):
        """Integer weight, bias and k for the output layer, whose accumulator *is* the logit in units of
        2^-k nats: one power-of-two weight scale for all outputs, so no rescaling is needed before the
        softmax table (pixzip.softmax)."""
        w = self.weight * self.mask
        top = float(w.detach().abs().max()) * s_in / self.weight_max  # smallest allowed unit 2^-k
        k = min(MAX_LOGIT_SHIFT, math.floor(-math.log2(max(top, 2.0**-MAX_LOGIT_SHIFT))))
        unit = 2.0**-k
        s_w = unit / s_in
        return round_ste(w / s_w), round_ste(self.bias / unit), k

    def forward(self, a: torch.Tensor, quant: tuple | None = None) -> torch.Tensor:
        """a (B, in, H, W) -> (B, out, H, W). quant = (s_in, s_out, lo, hi): a holds integers in units of
        s_in and the result integers in units of s_out, clamped to [lo, hi]."""
        pad = self.kernel // 2
        if quant is None:
            return F.conv2d(a, self.weight * self.mask, self.bias, padding=pad)
        s_in, s_out, lo, hi = quant
        w_int, b_int, m, shift = self.integer_params(s_in, s_out)
        if self.weight_max > WEIGHT_MAX:  # sums can pass 2^24, where float32 would round: float64 is exact
            acc = F.conv2d(a.double(), w_int.double(), b_int.double(), padding=pad)
            return round_ste(acc * (m.double() / 2.0**shift)[None, :, None, None]).clamp(lo, hi).float()
        acc = F.conv2d(a, w_int, b_int, padding=pad)  # integer-valued
        ratio = (m.double() / 2.0**shift).float()
        return round_ste(acc * ratio[None, :, None, None]).clamp(lo, hi)


class PixelCNN(nn.Module):
    def __init__(self, config: PixelCNNConfig):
        super().__init__()
        self.config = config
        c, f, k, g = config.channels, config.hidden, config.kernel, config.mask_groups
        self.first = MaskedConv(c * self.inputs_per_channel, f, config.first_kernel, g, "A",
                                2 ** (config.first_weight_bits - 1) - 1)
        self.inner = nn.ModuleList(MaskedConv(f, f, k, g, "B") for _ in range(config.blocks))
        self.outer = nn.ModuleList(MaskedConv(f, f, 1, g, "B") for _ in range(config.blocks))
        for conv in self.outer:  # blocks start close to identity
            conv.weight.data.mul_(0.1)
        self.head = MaskedConv(f, f, 1, g, "B")
        # Channel c's logits read the c-th F / C of the head's features (with joint_channels too).
        self.out = MaskedConv(f, c * 256, 1, c, "own", 2 ** (config.out_weight_bits - 1) - 1)
        # Activation scales (stream, each block's inner activation, head); zero until calibrated.
        self.register_buffer("scales", torch.zeros(config.blocks + 2))
        # With channel_scales, the stream's scale per feature (F,), which then replaces scales[0]; zero
        # until calibrated (and in checkpoints from before it existed).
        self.register_buffer("stream_scales", torch.zeros(config.hidden))
        self.register_load_state_dict_pre_hook(_older_checkpoints)

    @property
    def inputs_per_channel(self) -> int:
        return 2 if self.config.residual_inputs else 1

    def network_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) pixel values -> a0 (B, C * inputs_per_channel, H, W) integers in -128..127:
        per channel x - 128 and, with residual_inputs, the prediction error clamped to +-127 (the error of a
        subpixel is known once the subpixel is: causal under mask A)."""
        a0 = x - 128
        if not self.config.residual_inputs:
            return a0
        err = (x - image_predictions(x, self.config.predictor)).clamp(-ACT_MAX, ACT_MAX)
        return torch.stack([a0, err], dim=2).flatten(1, 2)  # (B, C, 2, H, W) -> channels x_R, e_R, x_G, ...

    @property
    def quantized(self) -> bool:
        return bool(self.scales[0] > 0)

    def stream_scale(self):
        """The scale of the residual stream's relu, the int8 input of the layers that read the stream: a
        float, or with channel_scales one per feature (F,). An 8-bit stream has this unit too."""
        return self.stream_scales.clone() if self.config.channel_scales else float(self.scales[0])

    def stream_format(self) -> tuple:
        """(unit, top): the integer residual stream's unit (a float or (F,), what the layers adding into it
        requantize to) and its clamp, +-top."""
        if self.config.stream_bits == 16:
            return self.stream_scale() / 2**STREAM_FINE_SHIFT, STREAM16_MAX
        return self.stream_scale(), ACT_MAX

    def stream_relu(self, h: torch.Tensor) -> torch.Tensor:
        """relu of the quantized stream h (B, F, H, W) in the units of stream_scale(), int8: for a 16-bit
        stream clamp(floor(h / 2^8 + 1/2), 0, 127), the integer model's (h + 128) >> 8."""
        if self.config.stream_bits == 16:
            return round_ste(h / 2**STREAM_FINE_SHIFT).clamp(0, ACT_MAX)
        return F.relu(h)

    def forward(self, x: torch.Tensor, stats: dict | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, H, W) integers 0..255 -> logits (B, C, 256, H, W) in nats.

        stats: when given (float mode only), collects each activation's values to calibrate the scales.
        cond: features known in advance, added into the stream after the first layer and every block
        (`add_condition`, pixzip.multiscale)."""
        b, c, hh, ww = x.shape
        a0 = self.network_inputs(x.float())  # (B, C * inputs_per_channel, H, W) integers -128..127
        if not self.quantized:
            h = self.first(a0 * INPUT_SCALE)
            for block in range(self.config.blocks):
                if cond is not None:
                    h = self.add_condition(block, h, cond)
                _collect(stats, "stream", h)
                h = h + self.block(block, F.relu(h), stats=stats)
            if cond is not None:
                h = self.add_condition(self.config.blocks, h, cond)
            _collect(stats, "stream", h)
            o = F.relu(self.head(F.relu(h)))
            _collect(stats, "head", o)
            logits = self.out(o)
        else:
            s = self.scales.tolist()
            s[0] = self.stream_scale()
            s_h, s_o = s[0], s[-1]
            unit, top = stream = self.stream_format()
            h = self.first(a0, (INPUT_SCALE, unit, -top, top))
            for block in range(self.config.blocks):
                if cond is not None:
                    h = self.add_condition(block, h, cond, stream)
                h = (h + self.block(block, self.stream_relu(h), s, stream=stream)).clamp(-top, top)
            if cond is not None:
                h = self.add_condition(self.config.blocks, h, cond, stream)
            o = self.head(self.stream_relu(h), (s_h, s_o, 0, ACT_MAX))
            w_int, b_int, k = self.out.logit_params(s_o)
            logits = F.conv2d(o, w_int, b_int) * 2.0**-k
        return logits.view(b, c, 256, hh, ww)

    def block(self, b: int, u: torch.Tensor, s: list | None = None, stats: dict | None = None,
              stream: tuple | None = None) -> torch.Tensor:
        """Block b's addition to the residual stream, from u = relu(stream) (B, F, H, W): float, or
        quantization-aware with the scales s (u in units of s[0]) and the stream's (unit, top)
        (stream_format), in whose units the result is."""
        if s is None:
            v = F.relu(self.inner[b](u))
            _collect(stats, f"inner{b}", v)
            return self.outer[b](v)
        unit, top = stream
        v = self.inner[b](u, (s[0], s[1 + b], 0, ACT_MAX))
        return self.outer[b](v, (s[1 + b], unit, -top, top))

    def calibrate(self, batches, quantile: float = 0.9999) -> None:
        """Fix the activation scales from the float model's activations on some batches, then switch to
        quantization-aware mode."""
        stats: dict[str, list] = {}
        with torch.no_grad():
            for x in batches:
                self.forward(x, stats)
        tops = {}
        for name, values in stats.items():
            v = torch.cat(values, dim=1).abs()  # (features, samples)
            v = v[:, torch.randperm(v.shape[1])[: 2_000_000 // len(v)]]
            tops[name] = max(float(torch.quantile(v.flatten(), quantile)), 1e-6)
            if name == "stream":  # per feature, no finer than 1/16 of the common scale (one shift per layer)
                tops["stream_features"] = torch.quantile(v, quantile, dim=1).clamp_min(tops[name] / 16)
        self._set_scales(tops)

    def _set_scales(self, tops: dict) -> None:
        self.scales.copy_(torch.tensor(self._scales(tops)))
        if self.config.channel_scales:
            self.stream_scales.copy_(tops["stream_features"] / ACT_MAX)

    def _scales(self, tops: dict[str, float]) -> list[float]:
        """The scales buffer from each activation's calibrated top value."""
        names = ["stream"] + [f"inner{i}" for i in range(self.config.blocks)] + ["head"]
        return [tops[n] / ACT_MAX for n in names]


def _collect(stats: dict | None, name: str, t: torch.Tensor) -> None:
    """Keep a sample of activation t (B, F, H, W) as (F, n) for calibration."""
    if stats is not None:
        per_feature = t.detach().transpose(0, 1).flatten(1)  # (F, B H W)
        stats.setdefault(name, []).append(per_feature[:, :: max(1, t.numel() // 200_000)])


def _older_checkpoints(module, state_dict, prefix, *args) -> None:
    """Checkpoints from before per-feature stream scales have none: zeros, as for a new model."""
    state_dict.setdefault(prefix + "stream_scales", torch.zeros_like(module.stream_scales))
