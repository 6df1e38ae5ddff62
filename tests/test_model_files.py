"""Damaged or malformed model files: one clear ModelError from the library, one line on stderr and exit code 1
from the command line (no traceback) - whether the file is given by path, found by name, or found by hash
while decompressing - and values outside the ranges the integer network relies on are refused at load."""
import io
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pixzip import codec, registry
from pixzip.cli import main
from pixzip.registry import ModelError

from .conftest import REPO

PIXELCNN = REPO / "models" / "pixelcnn-96d2cbc4.npz"
ROWLSTM = REPO / "models" / "rowlstm-202a1738.npz"


def arrays_of(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def save_arrays(path, arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # meta included as it was: only the altered array differs
    path.write_bytes(buf.getvalue())


def zeroed(data):
    mid = len(data) // 2
    return data[:mid] + bytes(64) + data[mid + 64:]


def altered(source, key, change):
    def make(path):
        arrays = arrays_of(source)
        arrays[key] = change(arrays[key].astype(np.int64))
        save_arrays(path, arrays)
    return make


def setting(index, value):
    def change(a):
        a = a.copy()
        a.reshape(-1)[index] = value
        return a
    return change


def dropped(key):
    def make(path):
        arrays = arrays_of(PIXELCNN)
        del arrays[key]
        save_arrays(path, arrays)
    return make


BROKEN = {  # case -> (writes the broken file to a path, words of the expected message)
    "zeroed-bytes": (lambda p: p.write_bytes(zeroed(PIXELCNN.read_bytes())), "damaged"),
    "truncated": (lambda p: p.write_bytes(PIXELCNN.read_bytes()[: PIXELCNN.stat().st_size // 2]), "damaged"),
    "not-a-zip": (lambda p: p.write_bytes(b"this is no model file\n" * 20), "damaged"),
    "empty": (lambda p: p.write_bytes(b""), "damaged"),
    "missing-array": (dropped("head.weight"), "no head.weight"),
    "missing-meta": (dropped("meta"), "no meta"),
    "exp-table-too-large": (altered(PIXELCNN, "exp_table", setting(3, 2**40)), "exp_table has entry"),
    "exp-table-negative": (altered(PIXELCNN, "exp_table", setting(3, -5)), "exp_table has entry"),
    "exp-table-starts-at-zero": (altered(PIXELCNN, "exp_table", setting(0, 0)), "exp_table starts with 0"),
    "multiplier-too-large": (altered(PIXELCNN, "inner1.multiplier", setting(2, 2**40)), "inner1.multiplier"),
    "multiplier-negative": (altered(PIXELCNN, "first.multiplier", setting(0, -3)), "first.multiplier"),
    "shift-too-large": (altered(PIXELCNN, "outer0.shift", lambda a: np.array(64)), "outer0.shift has shift 64"),
    "shift-negative": (altered(PIXELCNN, "head.shift", lambda a: np.array(-1)), "head.shift has shift -1"),
    "logit-shift-too-large": (altered(PIXELCNN, "out.shift", lambda a: np.array(40)), "out.shift has shift 40"),
    "float-weights": (altered(PIXELCNN, "first.weight", lambda a: a + 0.5), "first.weight holds float64"),
    "sigmoid-table": (altered(ROWLSTM, "sigmoid_table", setting(100, 2**16)), "sigmoid_table has entry 65536"),
    "tanh-table": (altered(ROWLSTM, "tanh_table", setting(7, -2**31)), "tanh_table has entry"),
    "lstm-multiplier": (altered(ROWLSTM, "lstm1.multiplier", setting(5, 2**33)), "lstm1.multiplier"),
}


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "x.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
    return path


def assert_one_line_error(result, *words):
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pixzip: error:"), result.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize("case", BROKEN)
def test_broken_model_by_path(case, photo, tmp_path):
    make, message = BROKEN[case]
    broken = tmp_path / "broken.npz"
    make(broken)
    with pytest.raises(ModelError, match="not a valid pixzip model file") as e:
        registry.load_file(broken)
    assert message in str(e.value) and str(broken) in str(e.value)
    result = CliRunner().invoke(main, ["compress", str(photo), "--model", str(broken)])
    assert_one_line_error(result, "not a valid pixzip model file", message)
    assert not (tmp_path / "x.png.pxz").exists()


@pytest.mark.parametrize("case", ["zeroed-bytes", "exp-table-too-large", "sigmoid-table"])
def test_broken_model_by_name(case, photo, tmp_path, monkeypatch):
    make, message = BROKEN[case]
    folder = tmp_path / "models"
    folder.mkdir()
    make(folder / "mine-0123abcd.npz")
    monkeypatch.setenv(registry.ENV_PATH, str(folder))
    with pytest.raises(ModelError, match=message):
        registry.resolve("mine")
    assert_one_line_error(CliRunner().invoke(main, ["compress", str(photo), "--model", "mine"]), message)


def test_zeroed_model_in_a_real_process(photo, tmp_path):
    """The issue's case, as a user runs it: no traceback, one line, exit code 1."""
    broken = tmp_path / "broken.npz"
    broken.write_bytes(zeroed(PIXELCNN.read_bytes()))
    done = subprocess.run([sys.executable, "-m", "pixzip", "compress", str(photo), "--model", str(broken)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "broken.npz: not a valid pixzip model file" in done.stderr


def test_broken_model_found_by_hash(tiny_rgb, photo, tmp_path, monkeypatch):
    """Decompressing looks for NAME-<sha8>.npz, then any file with the right hash: a damaged file of that name
    is named in one clear line, and damaged files of other models in the folder are passed over."""
    data = codec.compress(Image.open(photo), model=tiny_rgb)
    packed = tmp_path / "y.pxz"
    packed.write_bytes(data)
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv(registry.ENV_PATH, str(folder))
    named = folder / f"{tiny_rgb.name}-{tiny_rgb.sha256.hex()[:8]}.npz"
    named.write_bytes(zeroed(tiny_rgb.path.read_bytes()))
    (folder / "other-89abcdef.npz").write_bytes(b"junk")  # not the one: never read as a model
    with pytest.raises(ModelError, match="other bytes") as e:
        codec.decompress(data)
    assert str(named) in str(e.value)
    result = CliRunner().invoke(main, ["decompress", str(packed)])
    assert_one_line_error(result, "y.pxz", str(named), "damaged")
    assert not (tmp_path / "y.png").exists()
    shutil.copy(tiny_rgb.path, folder / "renamed.npz")  # the right bytes under another name still count
    result = CliRunner().invoke(main, ["decompress", str(packed)])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "y.png")), np.asarray(Image.open(photo)))


def test_shipped_models_pass_the_checks():
    for path in sorted((REPO / "models").glob("*.npz")):
        registry.load_file(path)
