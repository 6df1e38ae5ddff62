"""A model a user trains is usable by name: `pixzip export` writes into the per-user model folder (XDG data
directory), which compress, decompress and `pixzip models` search; shipped names are never hidden."""
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pixzip import registry
from pixzip.cli import main

TINY = ["--set", "hidden=6", "--set", "blocks=1", "--set", "crop=16", "--set", "batch=2",
        "--set", "train.qat_fraction=0.5", "--set", "warmup_steps=1"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    """An empty HOME without XDG_DATA_HOME or PIXZIP_MODEL_PATH, working in an empty folder."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv(registry.ENV_PATH, raising=False)
    monkeypatch.chdir(work)
    return home


def test_user_dir_follows_xdg(fresh_home, tmp_path, monkeypatch):
    assert registry.user_dir() == fresh_home / ".local" / "share" / "pixzip" / "models"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert registry.user_dir() == tmp_path / "data" / "pixzip" / "models"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")  # the specification says to ignore it
    assert registry.user_dir() == fresh_home / ".local" / "share" / "pixzip" / "models"


def test_train_export_and_use_by_name(fresh_home, tmp_path, monkeypatch):
    import torch

    torch.set_num_threads(1)
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:48]
    for k in range(2):
        px = np.stack([x * (3 + k), y * 4, (x + y) * 2], axis=2) + rng.integers(-6, 7, (40, 48, 3))
        Image.fromarray(np.clip(px, 0, 255).astype(np.uint8)).save(data / f"p{k}.png")
    r = run("train", "--data", data, "--out", "run", "--steps", 4, *TINY)
    assert r.exit_code == 0, r.output
    r = run("export", "run", "--name", "mine")
    assert r.exit_code == 0, r.output
    folder = fresh_home / ".local" / "share" / "pixzip" / "models"
    [model_file] = folder.glob("mine-*.npz")
    assert (folder / "manifest.json").exists() and not (tmp_path / "work" / "models").exists()
    assert str(model_file) in r.stderr

    photo = tmp_path / "work" / "photo.png"
    photo.write_bytes((data / "p0.png").read_bytes())
    r = run("compress", photo, "--model", "mine", "-o", "photo.pxz")
    assert r.exit_code == 0, r.output
    r = run("decompress", "photo.pxz", "-o", "back.png")
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(np.asarray(Image.open("back.png")), np.asarray(Image.open(photo)))
    r = run("models")
    assert r.exit_code == 0
    [line] = [line for line in r.stdout.splitlines() if line.startswith("mine ")]
    assert str(model_file) in line and "hidden" not in line
    assert "pixelcnn" in r.stdout  # the shipped ones still listed

    # A shipped name is refused outside the shipped folder: --model pixelcnn keeps meaning the shipped model.
    r = run("export", "run", "--name", "pixelcnn")
    assert r.exit_code == 1 and "shipped model's name" in r.stderr
    # --models-dir still writes anywhere; PIXZIP_MODEL_PATH's folders come before the user folder.
    r = run("export", "run", "--name", "mine", "--models-dir", tmp_path / "elsewhere")
    assert r.exit_code == 0 and "not searched by name" in r.stderr
    [other] = (tmp_path / "elsewhere").glob("mine-*.npz")
    assert registry.resolve("mine").path == model_file.resolve()
    monkeypatch.setenv(registry.ENV_PATH, str(tmp_path / "elsewhere"))
    assert registry.resolve("mine").path == other.resolve()
    r = run("models")
    hidden = [line for line in r.stdout.splitlines() if line.startswith("mine ") and "hidden by" in line]
    assert len(hidden) == 1 and str(model_file) in hidden[0]
