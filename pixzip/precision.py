"""Full float32 precision for the coding path's matmuls, and only for them.

The integer network's layers are float32 matmuls of integers (pixzip.intnet `_matmul`), exact only if the
products and sums are computed in float32: TF32 (CUDA) or bfloat16 (oneDNN on some CPUs), which torch may
be set to use, would round them. Those settings are process-global and belong to whoever uses torch in
the process, so pixzip sets them around each of its matmuls and puts back what was there after it (a
library user's own torch work keeps its settings), and does nothing where they are full precision already
(torch's defaults). Another thread's matmuls running at that moment would see full precision too.

Torch 2.9 and later keep these settings per backend and operation (`fp32_precision`: "ieee", "tf32",
"bf16", or "none" for the parent's); older versions as `allow_tf32` and the float32 matmul precision.
"""
import functools
from contextlib import contextmanager

import torch

# (backend, operation) of the settings torch's float32 matmuls read (torch >= 2.9).
_MATMULS = (("cuda", torch.backends.cuda.matmul), ("mkldnn", getattr(torch.backends.mkldnn, "matmul", None)))
NEW_API = hasattr(torch.backends, "fp32_precision") and all(
    m is not None and hasattr(m, "fp32_precision") for _, m in _MATMULS)
_EXACT = {"none", "ieee"}  # "none" everywhere: torch's default, full precision


def state() -> tuple:
    """Torch's settings for float32 matmuls, as `restore` takes them."""
    if NEW_API:
        return tuple(m.fp32_precision for _, m in _MATMULS)
    return torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()


def is_exact(settings: tuple) -> bool:
    if NEW_API:
        return all(s in _EXACT for s in settings)
    return not settings[0] and settings[1] == "highest"


def _parent(backend: str) -> str | None:
    """The precision a backend's operation set to "none" takes (its backend's, torch >= 2.9), or None
    where it cannot be told."""
    try:
        return torch._C._get_fp32_precision_getter(backend, "all")
    except (AttributeError, RuntimeError, TypeError):
        return None


def restore(settings: tuple) -> None:
    """Put back settings from `state`. An operation whose precision was its backend's is set to "none"
    again (it follows its backend as before), the others to what they were."""
    if NEW_API:
        for (backend, m), value in zip(_MATMULS, settings):
            m.fp32_precision = "none" if value == _parent(backend) else value
        return
    allow_tf32, matmul_precision = settings
    torch.set_float32_matmul_precision(matmul_precision)
    if torch.backends.cuda.matmul.allow_tf32 != allow_tf32:
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32


def _set_exact() -> None:
    if NEW_API:
        for _, m in _MATMULS:
            m.fp32_precision = "ieee"
    else:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")


@contextmanager
def full_precision():
    """Within: float32 matmuls in full precision; after: the settings as they were."""
    before = state()
    if is_exact(before):
        yield
        return
    _set_exact()
    try:
        yield
    finally:
        restore(before)


def exact(matmul):
    """matmul (any function) run in `full_precision`."""
    @functools.wraps(matmul)
    def run(*args, **kwargs):
        with full_precision():
            return matmul(*args, **kwargs)
    return run
