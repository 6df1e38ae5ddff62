"""`pixzip train` and `pixzip export`: a tiny run end to end (quantization-aware phase, validation of the
integer model, export, a model usable by compress/decompress), clear errors on bad input, and the
distributed path under torchrun with two CPU processes (gloo)."""
import ctypes
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from pixzip import codec, registry
from pixzip import train as training
from pixzip.cli import main

TINY = ["--set", "hidden=6", "--set", "blocks=1", "--set", "crop=16", "--set", "batch=2",
        "--set", "train.qat_fraction=0.5", "--set", "warmup_steps=1"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:48]
    for k in range(3):
        px = np.stack([x * (3 + k), y * 4, (x + y) * 2], axis=2) + rng.integers(-6, 7, (40, 48, 3))
        Image.fromarray(np.clip(px, 0, 255).astype(np.uint8)).save(folder / f"p{k}.png")
    return folder


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("arch, extra", [("pixelcnn", []), ("rowlstm", []), ("diagbilstm", []), ("multiscale", []),
                                         ("multiscale", ["--set", "base=rowlstm"])])
def test_train_validate_export_and_use(photos, tmp_path, monkeypatch, arch, extra):
    torch.set_num_threads(1)
    result = run("train", "--data", photos, "--val", photos, "--out", tmp_path / "run", "--steps", 6, "--arch", arch,
                 *TINY, *extra)
    assert result.exit_code == 0, result.output
    assert "quantization-aware from here" in result.output
    assert "integer model" in result.output  # the final validation is of the exact integer model
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 6 and state["config"]["hidden"] == 6 and state["train"]["crop"] == 16
    val = [e for e in state["log"] if "val_bpsp" in e]
    assert val and val[-1]["val_of"] == "integer model"

    models = tmp_path / "models"
    result = run("export", tmp_path / "run", "--name", "mine", "--models-dir", models, "--val", photos)
    assert result.exit_code == 0, result.output
    [model_file] = models.glob("mine-*.npz")
    assert registry.load_file(model_file).arch == arch == state["arch"]
    # The validation during training is what the exported model's files cost without the adaptive stage
    # (ideal bits, tiles included): the network's own quality, which training improves.
    model = registry.load_file(model_file)
    ideal = subpixels = 0
    for path in sorted(photos.glob("*.png")):
        px = np.asarray(Image.open(path))
        data, report = codec.compress_pixels(px, "RGB", model, adapt=False)
        np.testing.assert_array_equal(codec.decompress_pixels(data, models=model)[0], px)
        ideal, subpixels = ideal + report.ideal_bits, subpixels + px.size
    assert val[-1]["val_bpsp"] == round(ideal / subpixels, 4)
    monkeypatch.setenv("PIXZIP_MODEL_PATH", str(models))  # found by name and hash, without the package
    assert registry.find("mine", model.sha256).sha256 == model.sha256


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_time_budget_counts_the_chosen_clock(photos, tmp_path, monkeypatch, clock):
    """--minutes counts what --clock names: with that clock faked to advance 6 seconds a reading, a one-minute
    budget ends after exactly 10 steps (the other clock, left real, would take a minute)."""
    torch.set_num_threads(1)
    readings = iter(range(0, 10**6, 6))
    monkeypatch.setitem(training.CLOCKS, clock, lambda: next(readings))
    result = run("train", "--data", photos, "--out", tmp_path / "run", "--minutes", 1, "--clock", clock, *TINY)
    assert result.exit_code == 0, result.output
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert (state["step"], state["seconds"]) == (10, 60)


def test_unknown_clock_is_refused(photos, tmp_path):
    with pytest.raises(ValueError, match="unknown clock 'gpu'"):
        training.train(photos, tmp_path / "run", registry.ARCHITECTURES["pixelcnn"].config(), minutes=1, clock="gpu")


def test_config_file_and_overrides(photos, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('arch = "pixelcnn"\n[model]\nhidden = 6\nblocks = 1\n[train]\ncrop = 16\nbatch = 2\n')
    result = run("train", "--data", photos, "--out", tmp_path / "run", "--steps", 2, "--config", cfg,
                 "--set", "model.blocks=2")
    assert result.exit_code == 0, result.output
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert state["config"]["blocks"] == 2 and state["config"]["hidden"] == 6 and state["train"]["batch"] == 2
    # The architecture's own settings are known by their bare names too: --arch picks the config class.
    result = run("train", "--data", photos, "--out", tmp_path / "ms", "--steps", 1, "--config", cfg,
                 "--arch", "multiscale", "--set", "cond_hidden=4", "--set", "levels=2")
    assert result.exit_code == 0, result.output
    state = torch.load(tmp_path / "ms" / "checkpoint.pt", weights_only=False)
    assert state["arch"] == "multiscale" and state["config"]["cond_hidden"] == 4 and state["config"]["levels"] == 2
    assert any(k.startswith("small.small.") for k in state["model"])  # the small image is multi-scale too


@pytest.mark.parametrize("args, message", [
    (["--set", "hiden=6"], "unknown config key 'hiden'"),
    (["--set", "hidden=six"], "model config key hidden must be int"),
    (["--set", "train.lr=fast"], "train config key lr must be float"),
    (["--set", "crop=400"], "smaller than the 400-pixel crop"),
    (["--arch", "pixelcnn", "--minutes", 1], "exactly one of --minutes and --steps"),
    (["--set", "cond_hidden=4"], "unknown config key 'cond_hidden'"),  # a multi-scale setting, for a PixelCNN
    (["--arch", "multiscale", "--set", "base=lstm"], "base must be one of pixelcnn, rowlstm, diagbilstm"),
    (["--arch", "multiscale", "--set", "levels=0"], "levels must be at least 1"),
    (["--set", "out_weight_bits=13"], "out_weight_bits must be 8..12, not 13"),
    (["--arch", "rowlstm", "--set", "joint_channels=true"], "joint_channels is an option of the pixelcnn"),
])
def test_bad_settings_fail_cleanly(photos, tmp_path, args, message):
    result = run("train", "--data", photos, "--out", tmp_path / "run", "--steps", 2, *args)
    assert result.exit_code == 1 and message in result.output, result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_bad_data_folders_fail_cleanly(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("train", "--data", empty, "--out", tmp_path / "run", "--steps", 2)
    assert result.exit_code == 1 and "no images in" in result.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not a png")
    result = run("train", "--data", broken, "--out", tmp_path / "run", "--steps", 2)
    assert result.exit_code == 1 and "cannot read training image" in result.output
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[model]\nhidden = 6\n[optimizer]\nlr = 1\n")
    result = run("train", "--data", broken, "--out", tmp_path / "run", "--steps", 2, "--config", bad_toml)
    assert result.exit_code == 1 and "unknown sections or keys" in result.output


def test_distributed_two_processes(photos, tmp_path):
    """torchrun with 2 CPU processes (gloo): both train, process 0 writes the checkpoint."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "pixzip.cli", "train", "--data", str(photos), "--out", str(tmp_path / "run"), "--steps", "4",
           "--device", "cpu", "--threads", "1", *TINY]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert state["world_size"] == 2 and state["step"] == 4 and state["config"]["hidden"] == 6


FREED_MEMORY_PROBE = """
import ctypes, resource, torch
from pixzip.train import keep_freed_memory

def faults():  # minor page faults of writing and freeing a 64 MB tensor (16,384 pages)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(2**24)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = min(faults() for _ in range(3))
kept = keep_freed_memory()
after = sorted(faults() for _ in range(7))
print(default, int(kept), after[3])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_training_reuses_freed_memory():
    """A training step's large tensors are reused from the heap, not faulted in again page by page. Measured
    in a fresh process: in this one, whatever earlier tests left in the heap's arenas can serve the tensor
    without faults whatever the setting (it made this test fail now and then)."""
    try:
        ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    probe = subprocess.run([sys.executable, "-c", FREED_MEMORY_PROBE], capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    default, kept, reused = map(int, probe.stdout.split())
    assert default > 10000  # glibc's default: a large block is mapped afresh and faulted in each time
    assert kept == 1
    assert reused < 1000  # with the setting mostly reused (now and then a small allocation splits the free block)


THREADS_PROBE = """
import numba, torch
from pixzip.pixelcnn import PixelCNN, PixelCNNConfig
from pixzip.train import validate
torch.manual_seed(0)
model = PixelCNN(PixelCNNConfig(hidden=6, blocks=1))
images = [torch.randint(0, 256, (3, 24, 20), dtype=torch.uint8)]
model.calibrate([images[0][None].float()])
torch.set_num_threads(1)  # as `pixzip train --threads 1`
torch.get_num_threads()
assert validate(model, images)[1] == "integer model"
print(torch.get_num_threads())
"""


def test_validation_keeps_torch_threads():
    """Validating the integer model runs numba's parallel kernels, whose first launch in a process can set
    OpenMP's thread count to numba's: torch must train on with the threads it was given (--threads)."""
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one core: numba's thread count is torch's")
    out = subprocess.run([sys.executable, "-c", THREADS_PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1"]
