"""Shared fixtures: small integer models made on the spot (random weights, calibrated, exported)."""
from pathlib import Path

import pytest
import torch

from pixzip import registry
from pixzip.train import MODELS

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_command_line_models():
    """The command line resolves each model name once per process (pixzip.cli._MODELS); each test starts as a
    new process would, or a model another test exported under the same name is what a later one gets."""
    from pixzip import cli

    cli._MODELS.clear()


def make_model(path: Path, name: str = "tiny", seed: int = 0, arch: str = "pixelcnn", **config) -> registry.Model:
    """A small random model of an architecture with realistic activation ranges, exported as a model file."""
    model = calibrated_model(seed, arch, **config)
    file = path / f"{name}.npz"
    registry.save_model(file, name, arch, model.config, registry.ARCHITECTURES[arch].export(model))
    return registry.load_file(file)


def calibrated_model(seed: int = 0, arch: str = "pixelcnn", **config) -> torch.nn.Module:
    """A small random float model (pixzip.train.MODELS), calibrated: in quantization-aware mode."""
    torch.manual_seed(seed)
    cfg = registry.ARCHITECTURES[arch].config(**{"hidden": 12, "blocks": 2, **config})
    model = MODELS[arch](cfg)
    gen = torch.Generator().manual_seed(seed)
    # Smooth-ish random images, so activations resemble those on photos.
    batches = []
    for _ in range(2):
        base = torch.randint(0, 256, (4, cfg.channels, 4, 4), generator=gen).float()
        x = torch.nn.functional.interpolate(base, size=(24, 24), mode="bilinear", align_corners=False)
        batches.append((x + torch.randint(-8, 9, x.shape, generator=gen)).clamp(0, 255).round())
    model.calibrate(batches)
    return model


@pytest.fixture(scope="session")
def tiny_rgb(tmp_path_factory) -> registry.Model:
    return make_model(tmp_path_factory.mktemp("models"), "tiny-rgb")


@pytest.fixture(scope="session")
def tiny_gray(tmp_path_factory) -> registry.Model:
    return make_model(tmp_path_factory.mktemp("models"), "tiny-gray", channels=1, hidden=8)


@pytest.fixture(scope="session")
def tiny_residual(tmp_path_factory) -> registry.Model:
    """The shipped default's kind: residual inputs, a wide (15-bit) first layer, per-feature stream scales, a
    16-bit stream, a 12-bit output layer."""
    return make_model(tmp_path_factory.mktemp("models"), "tiny-residual", residual_inputs=True, first_weight_bits=15,
                      channel_scales=True, stream_bits=16, out_weight_bits=12)


@pytest.fixture(scope="session")
def tiny_joint(tmp_path_factory) -> registry.Model:
    """The default's kind with joint_channels: one decoder pass a step for all three channels."""
    return make_model(tmp_path_factory.mktemp("models"), "tiny-joint", residual_inputs=True, first_weight_bits=15,
                      channel_scales=True, stream_bits=16, out_weight_bits=12, joint_channels=True)


@pytest.fixture(scope="session")
def tiny_rowlstm(tmp_path_factory) -> registry.Model:
    return make_model(tmp_path_factory.mktemp("models"), "tiny-rowlstm", arch="rowlstm", residual_inputs=True)


@pytest.fixture(scope="session")
def tiny_rowlstm_gray(tmp_path_factory) -> registry.Model:
    return make_model(tmp_path_factory.mktemp("models"), "tiny-rowlstm-gray", arch="rowlstm", channels=1, hidden=8,
                      kernel=5)


@pytest.fixture(scope="session")
def tiny_diagbilstm(tmp_path_factory) -> registry.Model:
    return make_model(tmp_path_factory.mktemp("models"), "tiny-diagbilstm", arch="diagbilstm", residual_inputs=True)


@pytest.fixture(scope="session")
def tiny_diagbilstm_gray(tmp_path_factory) -> registry.Model:
    return make_model(tmp_path_factory.mktemp("models"), "tiny-diagbilstm-gray", arch="diagbilstm", channels=1,
                      hidden=8)


@pytest.fixture(scope="session")
def tiny_multiscale(tmp_path_factory) -> registry.Model:
    return make_model(tmp_path_factory.mktemp("models"), "tiny-multiscale", arch="multiscale", residual_inputs=True,
                      cond_hidden=6)


@pytest.fixture(scope="session")
def tiny_multiscale_gray(tmp_path_factory) -> registry.Model:
    return make_model(tmp_path_factory.mktemp("models"), "tiny-multiscale-gray", arch="multiscale", channels=1,
                      hidden=8, cond_hidden=4)


@pytest.fixture(scope="session")
def tiny_multiscale_rowlstm(tmp_path_factory) -> registry.Model:
    """A Multi-Scale PixelRNN of two levels (every fourth pixel, then every second, then the rest), all
    stages Row LSTMs."""
    return make_model(tmp_path_factory.mktemp("models"), "tiny-multiscale-rowlstm", arch="multiscale", base="rowlstm",
                      levels=2, residual_inputs=True, cond_hidden=6, first_weight_bits=15, channel_scales=True,
                      stream_bits=16, out_weight_bits=12)


@pytest.fixture(scope="session")
def tiny_multiscale_diagbilstm_gray(tmp_path_factory) -> registry.Model:
    return make_model(tmp_path_factory.mktemp("models"), "tiny-multiscale-diagbilstm-gray", arch="multiscale",
                      base="diagbilstm", channels=1, hidden=8, cond_hidden=4)


@pytest.fixture(params=["tiny_rgb", "tiny_residual", "tiny_joint", "tiny_rowlstm", "tiny_diagbilstm", "tiny_multiscale",
                        "tiny_multiscale_rowlstm"])
def rgb_model(request) -> registry.Model:
    """Every RGB model variant and architecture."""
    return request.getfixturevalue(request.param)
