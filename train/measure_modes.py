# Measures what each image mode costs (docs/modes.md): python train/measure_modes.py (needs .[bench], scikit-image).
import io, os, numpy as np, skimage
from PIL import Image
import imagecodecs as ic, oxipng
from pixzip import codec, modes, registry
d = os.path.join(os.path.dirname(skimage.__file__), 'data')
m = registry.resolve(None)
def png(im):
    buf = io.BytesIO(); im.save(buf, format='PNG'); return oxipng.optimize_from_memory(buf.getvalue(), level=6)
def jxl(im):
    a = np.asarray(im)
    if im.mode == '1': a = a.astype(np.uint8) * 255
    if im.mode == 'P': a = np.asarray(im.convert('RGBA' if 'transparency' in im.info else 'RGB'))
    return ic.jpegxl_encode(a, lossless=True, effort=9)
cases = []
for f in ('camera.png', 'horse.png', 'logo.png', 'coins.png', 'page.png'):
    im = Image.open(os.path.join(d, f)); im.load(); cases.append((f, im))
ch = Image.open(os.path.join(d, 'chelsea.png')); ch.load()
cases.append(('chelsea.png as P (quantize 256)', ch.quantize(256)))
cases.append(('chelsea.png as LA (alpha = L)', Image.merge('LA', [ch.convert('L'), ch.convert('L')])))
moon = np.asarray(Image.open(os.path.join(d, 'moon.png'))).astype(np.uint16)
cases.append(('moon.png as I;16 (x 257)', Image.fromarray(moon * 257)))
print('| image | mode | pixels | pixzip bytes | PNG (oxipng) bytes | JPEG-XL e9 bytes |')
print('|---|---|---:|---:|---:|---:|')
for name, im in cases:
    p = modes.split(im)
    data, rep = codec.compress_planes(p, m)
    back = modes.join(codec.decompress_planes(data, models=m))
    assert np.array_equal(np.asarray(back), np.asarray(im)) and back.mode == im.mode
    try: j = len(jxl(im))
    except Exception as e: j = f'n/a ({type(e).__name__})'
    print(f'| {name} | {im.mode} | {im.width}x{im.height} | {len(data)} | {len(png(im))} | {j} |')
