# Measures what each image mode costs (docs/modes.md): python train/experiments/measure_modes.py [MODEL]
# (needs .[bench], scikit-image); MODEL: a model's name or .npz file (default: the default model).
import io
import os
import sys
import numpy as np
import skimage
from PIL import Image
import imagecodecs as ic
import oxipng
from pixzip import codec, modes, registry, widepng
d = os.path.join(os.path.dirname(skimage.__file__), 'data')
m = registry.resolve(sys.argv[1] if len(sys.argv) > 1 else None)
def png(im):
    if isinstance(im, widepng.WideImage):
        return oxipng.optimize_from_memory(widepng.write(im), level=6)
    buf = io.BytesIO()
    im.save(buf, format='PNG')
    return oxipng.optimize_from_memory(buf.getvalue(), level=6)
def pixels(im):
    return im.pixels if isinstance(im, widepng.WideImage) else np.asarray(im)
def jxl(im):
    a = pixels(im)
    if im.mode == '1':
        a = a.astype(np.uint8) * 255
    if im.mode == 'P':
        a = np.asarray(im.convert('RGBA' if 'transparency' in im.info else 'RGB'))
    return ic.jpegxl_encode(a, lossless=True, effort=9)
cases = []
for f in ('camera.png', 'horse.png', 'logo.png', 'coins.png', 'page.png'):
    im = Image.open(os.path.join(d, f))
    im.load()
    cases.append((f, im))
ch = Image.open(os.path.join(d, 'chelsea.png'))
ch.load()
cases.append(('chelsea.png as P (quantize 256)', ch.quantize(256)))
cases.append(('chelsea.png as LA (alpha = L)', Image.merge('LA', [ch.convert('L'), ch.convert('L')])))
moon = np.asarray(Image.open(os.path.join(d, 'moon.png'))).astype(np.uint16)
cases.append(('moon.png as I;16 (x 257)', Image.fromarray(moon * 257)))
# 16-bit colour: a photo box-downscaled 2x with the sums kept at 16 bits (10 significant bits per channel)
ast = np.asarray(Image.open(os.path.join(d, 'astronaut.png'))).astype(np.uint16)
wide = (ast[0::2, 0::2] + ast[1::2, 0::2] + ast[0::2, 1::2] + ast[1::2, 1::2]) * 64  # (256, 256, 3)
alpha = np.broadcast_to(np.linspace(0, 65535, 256).astype(np.uint16)[None, :, None], (256, 256, 1))
cases.append(('astronaut.png / 2 as RGB;16', widepng.WideImage('RGB;16', wide)))
cases.append(('astronaut.png / 2 as RGBA;16 (alpha = ramp)',
              widepng.WideImage('RGBA;16', np.concatenate([wide, alpha], 2))))
cases.append(('astronaut.png / 2 as LA;16 (grey = G)',
              widepng.WideImage('LA;16', np.concatenate([wide[:, :, 1:2], alpha], 2))))
print('| image | mode | pixels | pixzip bytes | pixzip --no-adapt bytes | PNG (oxipng) bytes | JPEG-XL e9 bytes |')
print('|---|---|---:|---:|---:|---:|---:|')
for name, im in cases:
    p = modes.split(im)
    data, rep = codec.compress_planes(p, m)
    plain, _ = codec.compress_planes(p, m, adapt=False)  # format 3 (its round trips are tested elsewhere)
    back = modes.join(codec.decompress_planes(data, models=m))
    assert np.array_equal(pixels(back), pixels(im)) and back.mode == im.mode
    try:
        j = len(jxl(im))
    except Exception as e:
        j = f'n/a ({type(e).__name__})'
    print(f'| {name} | {im.mode} | {im.width}x{im.height} | {len(data)} | {len(plain)} | {len(png(im))} | {j} |',
          flush=True)
