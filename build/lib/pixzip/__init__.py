"""pixzip: learned lossless image compression.

    import pixzip
    data = pixzip.compress(image)        # PIL image (L or RGB) or uint8 array -> .pxz bytes
    image = pixzip.decompress(data)      # -> the same pixels, on any machine
"""
from .codec import Report, compress, compress_pixels, decompress, decompress_pixels
from .container import FormatError
from .codec import DecodeError
from .image import ImageError
from .registry import ModelError

__all__ = ["compress", "decompress", "compress_pixels", "decompress_pixels", "Report", "FormatError",
           "DecodeError", "ImageError", "ModelError"]
