"""The command line: outputs, messages, exit codes, no overwriting, no partial files, JSON."""
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pixzip import batch, container, registry
from pixzip.cli import main


@pytest.fixture
def env(tiny_rgb, monkeypatch):
    monkeypatch.setenv("PIXZIP_MODEL_PATH", str(tiny_rgb.path.parent))
    return tiny_rgb


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:20, 0:30]
    px = np.clip(np.stack([x * 8, y * 12, x + y], axis=2) + rng.integers(-3, 4, (20, 30, 3)), 0, 255)
    path = tmp_path / "photo.png"
    Image.fromarray(px.astype(np.uint8)).save(path)
    return path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_compress_decompress_roundtrip(env, photo, tmp_path):
    r = run("compress", photo, "--model", env.path)
    assert r.exit_code == 0, r.output
    packed = tmp_path / "photo.png.pxz"
    assert packed.exists() and "bpp" in r.output and "bpsp" in r.output and "ideal" in r.output
    photo.rename(tmp_path / "original.png")
    r = run("decompress", packed)
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "photo.png")),
                          np.asarray(Image.open(tmp_path / "original.png")))


def test_json_output(env, photo):
    r = run("compress", photo, "--model", env.path, "--json")
    assert r.exit_code == 0
    stats = json.loads(r.stdout)
    assert stats["width"] == 30 and stats["height"] == 20 and stats["mode"] == "RGB"
    assert stats["bpp"] == pytest.approx(8 * stats["output_bytes"] / 600, abs=1e-3)
    assert stats["bpsp"] == pytest.approx(stats["bpp"] / 3, abs=1e-3)
    assert {"input_bytes", "ideal_bpsp", "seconds", "model", "output"} <= set(stats)


def test_no_overwrite_without_force(env, photo, tmp_path):
    out = tmp_path / "photo.png.pxz"
    out.write_bytes(b"precious")
    r = run("compress", photo, "--model", env.path)
    assert r.exit_code == 1
    assert "already exists" in r.stderr and "--force" in r.stderr
    assert out.read_bytes() == b"precious"
    r = run("compress", photo, "--model", env.path, "--force")
    assert r.exit_code == 0 and out.read_bytes()[:4] == b"\x89PXZ"


def test_output_option_and_several_inputs(env, photo, tmp_path):
    r = run("compress", photo, "--model", env.path, "-o", tmp_path / "x.pxz")
    assert r.exit_code == 0 and (tmp_path / "x.pxz").exists()
    second = tmp_path / "second.png"
    second.write_bytes(photo.read_bytes())
    r = run("compress", photo, second, "--model", env.path, "-o", tmp_path / "nowhere.pxz")
    assert r.exit_code == 1 and "existing folder" in r.stderr
    folder = tmp_path / "out"
    folder.mkdir()
    r = run("compress", photo, second, "--model", env.path, "-o", folder)
    assert r.exit_code == 0 and sorted(p.name for p in folder.iterdir()) == ["photo.png.pxz", "second.png.pxz"]


def test_bad_inputs_fail_cleanly(env, photo, tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    r = run("compress", junk, photo, "--model", env.path)
    assert r.exit_code == 1  # one failed, the other was still done
    assert r.stderr.count("pixzip: error:") == 1 and "junk.png" in r.stderr
    assert not (tmp_path / "junk.png.pxz").exists() and (tmp_path / "photo.png.pxz").exists()
    assert run("compress", tmp_path / "missing.png").exit_code != 0
    r = run("compress", photo, "--model", "no-such-model")
    assert r.exit_code == 1 and "unknown model" in r.stderr


def test_info_and_models(env, photo, tmp_path):
    run("compress", photo, "--model", env.path)
    r = run("info", tmp_path / "photo.png.pxz")
    assert r.exit_code == 0
    assert "30x20 RGB" in r.output and env.name in r.output and env.sha256.hex() in r.output
    r = run("models")
    assert r.exit_code == 0 and "multiscale/rowlstm" in r.output  # a multi-scale model's base is shown
    # the validation cost is shown with the format it was measured in (the network alone, or with the stage)
    shipped = {e["name"]: e for e in registry.manifest()["models"]}
    rows = {line.split()[0]: line for line in reversed(r.output.splitlines()[1:]) if line.strip()}  # the first wins
    for name, entry in shipped.items():
        assert f"{entry['val_bpsp']:.3f} ({entry['val_format']})" in rows[name]


def test_real_process_exit_code_and_one_line_error(tmp_path):
    bad = tmp_path / "bad.pxz"
    bad.write_bytes(container.MAGIC + bytes([container.VERSION + 1]) + bytes(100))  # a version from the future
    run_ = subprocess.run([sys.executable, "-m", "pixzip", "decompress", str(bad)], capture_output=True, text=True)
    assert run_.returncode == 1
    assert run_.stderr.strip().count("\n") == 0 and "Traceback" not in run_.stderr
    assert "version" in run_.stderr
    assert not (tmp_path / "bad.png").exists()


def test_heatmap(env, photo, tmp_path):
    r = run("compress", photo, "--model", env.path, "--heatmap", tmp_path / "heat.png")
    assert r.exit_code == 0, r.output
    heat = Image.open(tmp_path / "heat.png")
    assert heat.width > 2 * 30 and heat.height >= 20
    assert run("compress", photo, photo, "--model", env.path, "--heatmap", tmp_path / "h2.png").exit_code == 1


def test_test_command_checks_without_writing(env, photo, tmp_path):
    run("compress", photo, "--model", env.path)
    good = tmp_path / "photo.png.pxz"
    bad = tmp_path / "bad.pxz"
    data = bytearray(good.read_bytes())
    data[-len(data) // 4] ^= 0x40  # inside the payload (its last word's low bits may be slack)
    bad.write_bytes(bytes(data))
    before = sorted(p.name for p in tmp_path.iterdir())
    r = run("test", good)
    assert r.exit_code == 0 and "OK" in r.output
    r = run("test", good, bad)
    assert r.exit_code == 1 and r.stderr.count("pixzip: error:") == 1 and "bad.pxz" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_stdin_stdout_and_summary(env, photo, tmp_path):
    r = CliRunner().invoke(main, ["compress", "-", "--model", str(env.path)], input=photo.read_bytes())
    assert r.exit_code == 0, r.stderr
    data = r.stdout_bytes
    assert data[:4] == b"\x89PXZ" and "bpsp" in r.stderr  # the report goes to stderr, the file to stdout
    r = CliRunner().invoke(main, ["decompress", "-"], input=data)
    assert r.exit_code == 0, r.stderr
    back = np.asarray(Image.open(__import__("io").BytesIO(r.stdout_bytes)))
    np.testing.assert_array_equal(back, np.asarray(Image.open(photo)))
    other = tmp_path / "other.png"
    other.write_bytes(photo.read_bytes())
    r = run("compress", photo, other, "--model", env.path)
    assert r.exit_code == 0 and "total: 2 of 2 files" in r.output and "bpp" in r.output.splitlines()[-1]


def test_bench_reports_an_unreadable_image_in_one_line(tmp_path):
    (tmp_path / "x.png").write_bytes(b"junk")
    r = run("bench", tmp_path, "--codecs", "png")
    assert r.exit_code == 1 and "x.png: not a readable image" in r.stderr and "Traceback" not in r.output


def test_folders_jobs_and_rm(env, photo, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    originals = {}
    for k, folder in enumerate([tree, tree / "sub", tree / "sub"]):
        path = folder / f"p{k}.png"
        path.write_bytes(photo.read_bytes())
        originals[path] = np.asarray(Image.open(photo))
    r = run("compress", tree, "--model", env.path)
    assert r.exit_code == 1 and "is a folder (use -r" in r.stderr
    r = run("compress", "-r", tree, "--model", env.path, "--jobs", 2)  # two worker processes
    assert r.exit_code == 0, r.output
    assert "total: 3 of 3 files" in r.output and all(p.with_name(p.name + ".pxz").exists() for p in originals)
    assert all(p.exists() for p in originals)  # inputs kept by default
    r = run("test", "-r", tree)
    assert r.exit_code == 0 and r.output.count("OK") == 3
    for p in originals:
        p.unlink()
    r = run("decompress", "-r", tree, "--rm")
    assert r.exit_code == 0, r.output
    for p, pixels in originals.items():  # p0.png.pxz -> p0.png, the .pxz removed
        np.testing.assert_array_equal(np.asarray(Image.open(p)), pixels)
        assert not p.with_name(p.name + ".pxz").exists()
    r = run("compress", "-r", tree, "--model", env.path, "--rm", "--jobs", 2)
    assert r.exit_code == 0 and not any(p.exists() for p in originals)


def test_outputs_get_the_usual_permissions(env, photo, tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        assert run("compress", photo, "--model", env.path).exit_code == 0
    finally:
        os.umask(mask)
    assert (tmp_path / "photo.png.pxz").stat().st_mode & 0o777 == 0o644


def test_recursive_into_an_output_folder_keeps_subfolders(env, photo, tmp_path):
    tree, out = tmp_path / "tree", tmp_path / "out"
    for sub in ("a", "b"):
        (tree / sub).mkdir(parents=True)
        (tree / sub / "same.png").write_bytes(photo.read_bytes())
    out.mkdir()
    r = run("compress", "-r", tree, "-o", out, "--model", env.path)
    assert r.exit_code == 0, r.output
    assert (out / "a" / "same.png.pxz").exists() and (out / "b" / "same.png.pxz").exists()


def test_parallel_workers_use_one_thread_each(monkeypatch):
    """-j N runs N worker processes; each must use one thread for torch and numba, or N x cores threads
    wait for each other (measured: -j 2 on 2 cores decoded a 64 x 40 image in 115 s instead of 1 s)."""
    import numba
    import torch

    before = (torch.get_num_threads(), numba.get_num_threads())
    try:
        stats, _ = batch._job(lambda path, target, opts: ((torch.get_num_threads(), numba.get_num_threads()), []),
                              None, None, {})
        assert stats == (1, 1)
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])


@pytest.mark.parametrize("compiled", [False, True])
def test_progress_bar_says_when_the_kernels_compile(compiled, monkeypatch):
    """On a terminal, until the first progress, the bar says when this machine has no compiled kernels yet
    (the first run takes seconds more); then the progress replaces it. Off a terminal it prints nothing."""
    import io

    from pixzip import kernels

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(kernels, "compiled_here", lambda *dispatchers: compiled)
    for decoding in (False, True):
        for stream in (Terminal(), io.StringIO()):
            monkeypatch.setattr("sys.stderr", stream)
            with batch.progress_bar("x.pxz", decoding) as update:
                shown = stream.getvalue()
                update(5, 10)
            after = stream.getvalue()[len(shown):]
            says = "compiling kernels" in shown
            assert says == (not compiled and isinstance(stream, Terminal)), (decoding, stream)
            assert "compiling kernels" not in after and ("50%" in after) == isinstance(stream, Terminal)
