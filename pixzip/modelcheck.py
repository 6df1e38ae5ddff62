"""Load-time range checks of a model file's integer arrays, before they become an integer network.

`check_arrays` checks what the network builders (pixzip.intnet, pixzip.intlstm, pixzip.intscale) take as it
is: the exp table, the LSTM gate tables, the requantization multipliers and shifts, and that every array
holds integers. `check_exact` checks the weights' and biases' magnitudes (exact float32 and int32
accumulation); the builders call it with their layers' names, and check the gate tables' sizes. A value
outside these ranges would overflow int32 or int64 arithmetic, index outside a table, or shift by 64 or more
(undefined in compiled code), so encoder and decoder, or two machines, could compute different integers; no
exported model comes near the limits.
"""
import numpy as np

from .kernels import GATE_BITS
from .intformat import ACT_MAX, MAX_LOGIT_SHIFT, MULTIPLIER_BITS, WEIGHT_MAX, WIDE_WEIGHT_MAX, split_wide
from .softmax import EXP_ONE

GATE_ONE = 1 << GATE_BITS  # sigmoid and tanh tables: |value| <= 1 in units of 2^-GATE_BITS
MULTIPLIER_LIMIT = 1 << MULTIPLIER_BITS  # requantization multipliers are below this (pixzip.pixelcnn)
# Requantization is (acc * multiplier + bias * multiplier + 2^(shift - 1)) >> shift in int64, with |acc| and
# |bias| below 2^31 (check_exact): below 2^63 for every shift up to 62.
SHIFT_MAX = 62
TABLES = {"exp_table": (0, EXP_ONE), "sigmoid_table": (0, GATE_ONE), "tanh_table": (-GATE_ONE, GATE_ONE)}
EXACT_FP32 = 2**24  # float32 sums of integers are exact below this
EXACT_INT32 = 2**31  # the accumulators are int32


def _range(key: str, a: np.ndarray, lo: int, hi: int, what: str) -> None:
    if a.size and (a.min() < lo or a.max() > hi):
        bad = a.min() if a.min() < lo else a.max()
        raise ValueError(f"{key} has {what} {bad}, outside {lo}..{hi}")


def check_arrays(arrays: dict[str, np.ndarray]) -> None:
    """Raise ValueError naming the first array (file keys, e.g. "inner0.shift" or "full.exp_table") that is
    not integers or holds a value outside its range."""
    for key, a in arrays.items():
        if a.dtype.kind not in "iu":
            raise ValueError(f"{key} holds {a.dtype} values, not integers")
        if a.dtype.kind == "u" and a.size and int(a.max()) > np.iinfo(np.int64).max:
            raise ValueError(f"{key} has value {a.max()}, beyond int64")
    for key, a in arrays.items():
        leaf = key.rsplit(".", 1)[-1]
        if leaf in TABLES:
            if a.ndim != 1 or a.size == 0:
                raise ValueError(f"{key} has shape {a.shape}, not a non-empty table")
            _range(key, a, *TABLES[leaf], "entry")
            if leaf == "exp_table" and a[0] <= 0:
                raise ValueError(f"{key} starts with {a[0]}: every distribution would be empty")
        elif leaf == "multiplier":
            _range(key, a, 0, MULTIPLIER_LIMIT - 1, "multiplier")
        elif leaf == "shift":
            if a.ndim != 0:
                raise ValueError(f"{key} has shape {a.shape}, not one number")
            top = MAX_LOGIT_SHIFT if key == "out.shift" or key.endswith(".out.shift") else SHIFT_MAX
            _range(key, a, 0, top, "shift")


def check_exact(arrays: dict[str, np.ndarray], names: list[str], weights: tuple[str, ...] = ("weight",)) -> None:
    """Refuse weights whose float32 accumulation could round (docs/design.md, "Exactness"): for each layer
    of `names` (its arrays NAME.bias and NAME.WEIGHT for each of `weights`), every output's sum of |weight|
    x 128 (the largest |activation|) + |bias| must stay below 2^24 - for a wide layer in each of its two
    int8 matmuls, and below 2^31 (the int32 accumulator) when they are combined."""
    for name in names:
        bias = np.abs(arrays[f"{name}.bias"])
        w = np.concatenate([arrays[f"{name}.{k}"].reshape(len(bias), -1) for k in weights], axis=1)
        top = int(np.abs(w).max(initial=0))
        if top > WIDE_WEIGHT_MAX:
            raise ValueError(f"layer {name} has weights beyond +-{WIDE_WEIGHT_MAX} ({top})")
        # A wide layer is two int8 matmuls; the output layer's sums are float32 over its whole weights
        # (pixzip.softmax), whatever their width.
        parts = split_wide(w) if top > WEIGHT_MAX and name != "out" else (w,)
        for part, limit, what in [(p, EXACT_FP32, "float32") for p in parts] + [(w, EXACT_INT32, "int32")]:
            bound = np.abs(part).sum(axis=1) * (ACT_MAX + 1) + bias
            if bound.max() >= limit:
                raise ValueError(f"layer {name} can exceed exact {what} accumulation ({bound.max()} >= {limit})")
