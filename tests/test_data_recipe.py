"""The training-data recipe's exclusion check (train/data_recipe.py): fast, no downloads."""

import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

RECIPE = Path(__file__).resolve().parents[1] / "train" / "data_recipe.py"


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("data_recipe", RECIPE)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["data_recipe"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def protected(recipe, tmp_path):
    val, graphics = tmp_path / "val", tmp_path / "graphics"
    val.mkdir()
    graphics.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(val / "ladybird.png")
    icon = rng.integers(0, 256, (48, 48, 4), dtype=np.uint8)
    Image.fromarray(icon, "RGBA").save(graphics / "icon-server.png")
    return recipe.Protected.load([val, graphics]), val / "ladybird.png", graphics / "icon-server.png"


def test_packages_refused(recipe):
    assert recipe.excluded("gnome-icon-theme")
    assert recipe.excluded("gnome-icon-theme", "/usr/share/icons/gnome/48x48/places/folder.png")
    assert recipe.excluded("libjxl-testdata")
    assert recipe.excluded("foo-testdata")
    assert recipe.excluded("python3-skimage")
    assert recipe.excluded("mate-backgrounds") is None
    assert recipe.excluded("oxygen-icon-theme", "/usr/share/icons/oxygen/48x48/apps/kate.png") is None


def test_paths_refused(recipe):
    assert recipe.excluded("libpng-dev", "/usr/share/doc/libpng/testdata/basn2c08.png")
    assert recipe.excluded("x", "/usr/share/foo/test-images/lena.png")
    assert recipe.excluded("x", "/usr/lib/python3/dist-packages/skimage/data/astronaut.png")


def test_val_names_and_hashes_refused(recipe, protected):
    prot, val_file, icon_file = protected
    assert "ladybird" in prot.names
    # by name: the source wallpaper of a val image, whatever its folder or case
    assert recipe.excluded("mate-backgrounds", "/usr/share/backgrounds/mate/nature/LadyBird.jpg", prot)
    assert recipe.excluded("plasma-workspace-wallpapers",
                           "/usr/share/wallpapers/EveningGlow/contents/images/2560x1600.jpg",
                           recipe.Protected({"eveningglow"}, set()))
    # by file bytes
    data = icon_file.read_bytes()
    assert recipe.excluded("oxygen-icon-theme", "/usr/share/icons/a/48x48/b/c.png", prot, data=data)
    # by pixels: the same icon re-encoded (other compression) is still refused
    with Image.open(icon_file) as im:
        im.load()
        buf = io.BytesIO()
        im.save(buf, format="PNG", compress_level=1)
        again = Image.open(io.BytesIO(buf.getvalue()))
        again.load()
        assert buf.getvalue() != data
        assert recipe.excluded("oxygen-icon-theme", "/usr/share/icons/a/48x48/b/c.png", prot, buf.getvalue(), again)
    with Image.open(val_file) as im:
        im.load()
        assert recipe.excluded("x", "/a/b.png", prot, image=im.convert("RGBA"))
    # an unrelated image passes
    other = Image.fromarray(np.zeros((50, 50, 3), np.uint8))
    assert recipe.excluded("mate-backgrounds", "/usr/share/backgrounds/mate/nature/Dune.jpg", prot,
                           b"other", other) is None


def test_writer_refuses_protected_output(recipe, protected, tmp_path):
    prot, val_file, _ = protected
    out = tmp_path / "out"
    out.mkdir()
    w = recipe.Writer(out, prot)
    with Image.open(val_file) as im:
        with pytest.raises(SystemExit):
            w.save(im.copy(), "x.png", "photo", "p", "1", "l", "s", "p")
    w.save(Image.new("RGBA", (64, 64), (10, 20, 30, 128)), "ok.png", "icons", "p", "1", "l", "s", "p")
    with Image.open(out / "ok.png") as im:
        assert im.mode == "RGB" and im.size == (64, 64)
        assert not {k for k in im.info if k not in ("dpi",)}
    recipe.check(out, w.rows, prot)


def test_sources_list_not_excluded(recipe):
    import tomllib

    cfg = tomllib.loads(recipe.SOURCES.read_text())
    for kind in ("photo", "art"):
        for package, spec in cfg[kind].items():
            assert recipe.excluded(package) is None
            for entry in spec["files"]:
                assert recipe.excluded(package, entry, recipe.Protected(
                    {"eveningglow", "ladybird", "themouse", "twowings", "yellowflower"}, set())) is None, entry
