"""Where the bits go: the image beside a map of what each pixel costs, with a colour scale."""
import numpy as np
from PIL import Image, ImageDraw

# A perceptually ordered dark-to-bright ramp (black, purple, red, orange, yellow, white), sampled linearly.
_ANCHORS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164], [255, 255, 255]],
                    dtype=np.float64)


def colormap(t: np.ndarray) -> np.ndarray:
    """t in [0, 1], any shape -> uint8 RGB, shape + (3,)."""
    x = np.clip(t, 0, 1) * (len(_ANCHORS) - 1)
    i = np.minimum(x.astype(int), len(_ANCHORS) - 2)
    frac = (x - i)[..., None]
    return (_ANCHORS[i] * (1 - frac) + _ANCHORS[i + 1] * frac).round().astype(np.uint8)


def render(pixels: np.ndarray, bits: np.ndarray) -> Image.Image:
    """pixels (H, W, C) uint8 and bits (H, W) per pixel -> one RGB picture: image | cost map | scale."""
    h, w = bits.shape
    top = float(np.percentile(bits, 99.5)) if bits.size else 1.0
    top = max(top, 1e-6)
    heat = colormap(bits / top)  # (H, W, 3)
    photo = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels
    bar_w, label_w, gap = 16, 120, 8
    canvas = Image.new("RGB", (max(2 * w + 3 * gap + bar_w + label_w, 260), max(h, 120) + 18), "white")
    canvas.paste(Image.fromarray(photo), (0, 0))
    canvas.paste(Image.fromarray(heat), (w + gap, 0))
    scale = colormap(np.linspace(1, 0, h)[:, None].repeat(bar_w, axis=1))  # top = most expensive
    bar_x = 2 * w + 2 * gap
    canvas.paste(Image.fromarray(scale), (bar_x, 0))
    draw = ImageDraw.Draw(canvas)
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = int((1 - frac) * (h - 1))
        draw.text((bar_x + bar_w + 4, min(max(y - 6, 0), h - 12)), f"{frac * top:.1f} bits", fill="black")
    mean = bits.mean() if bits.size else 0.0
    draw.text((4, max(h, 120) + 3), f"cost of each pixel in bits (all channels); mean {mean:.2f} bpp",
              fill="black")
    return canvas
