"""pixzip: learned lossless image compression.

    import pixzip
    data = pixzip.compress(image)        # PIL image (any supported mode) or uint8 array -> .pxz bytes
    image = pixzip.decompress(data)      # -> the same pixels, on any machine
"""
import os

# OpenMP threads that wait for work sleep instead of spinning. The compiled kernels run thousands of short
# parallel regions a megapixel; on a machine whose cores are busy with other work, spinning threads wait
# for a descheduled peer at every barrier: decoding beside another busy process took 8x longer with two
# threads than with one (685 against 73 s/MP), and 74-85 s/MP with two threads that sleep
# (docs/benchmarks.md, "Busy machines"). Set before numba and torch start OpenMP; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _drop_stale_kernel_caches() -> None:
    """numba's on-disk cache of a compiled kernel (cache=True) is checked against the kernel's own source file
    only, not the modules it inlines (pixzip.adaptive._code inlines contexts, mixing, binarize, bincoder): after
    an edit or update of one of those, the old kernel would run, and code files differently from every other
    machine. So every cached kernel older than any of pixzip's sources is dropped (it is compiled again)."""
    here = os.path.dirname(os.path.abspath(__file__))
    cache = os.path.join(here, "__pycache__")
    try:
        newest = max(e.stat().st_mtime for e in os.scandir(here) if e.name.endswith(".py"))
        for e in os.scandir(cache):
            if e.name.endswith((".nbi", ".nbc")) and e.stat().st_mtime < newest:
                os.remove(e.path)
    except OSError:  # no cache yet, or not ours to change: numba then compiles or uses its own
        pass


_drop_stale_kernel_caches()

# The imports come after the environment above (hence noqa: E402).
from .codec import DecodeError, Report, compress, compress_pixels, decompress, decompress_pixels  # noqa: E402
from .container import FormatError  # noqa: E402
from .image import ImageError  # noqa: E402
from .registry import ModelError  # noqa: E402

__all__ = ["compress", "decompress", "compress_pixels", "decompress_pixels", "Report", "FormatError",
           "DecodeError", "ImageError", "ModelError"]
