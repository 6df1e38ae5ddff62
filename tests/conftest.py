"""Shared fixtures: small integer models made on the spot (random weights, calibrated, exported)."""
from pathlib import Path

import pytest
import torch

from pixzip import registry
from pixzip.intnet import export_arrays
from pixzip.pixelcnn import PixelCNN, PixelCNNConfig

REPO = Path(__file__).resolve().parent.parent


def make_model(path: Path, name: str = "tiny", seed: int = 0, **config) -> registry.Model:
    """A small random PixelCNN with realistic activation ranges, exported as a model file."""
    torch.manual_seed(seed)
    cfg = PixelCNNConfig(**{"hidden": 12, "blocks": 2, **config})
    model = PixelCNN(cfg)
    gen = torch.Generator().manual_seed(seed)
    # Smooth-ish random images, so activations resemble those on photos.
    batches = []
    for _ in range(2):
        base = torch.randint(0, 256, (4, cfg.channels, 4, 4), generator=gen).float()
        x = torch.nn.functional.interpolate(base, size=(24, 24), mode="bilinear", align_corners=False)
        batches.append((x + torch.randint(-8, 9, x.shape, generator=gen)).clamp(0, 255).round())
    model.calibrate(batches)
    file = path / f"{name}.npz"
    registry.save_model(file, name, "pixelcnn", cfg, export_arrays(model))
    return registry.load_file(file)


@pytest.fixture(scope="session")
def tiny_rgb(tmp_path_factory) -> registry.Model:
    return make_model(tmp_path_factory.mktemp("models"), "tiny-rgb")


@pytest.fixture(scope="session")
def tiny_gray(tmp_path_factory) -> registry.Model:
    return make_model(tmp_path_factory.mktemp("models"), "tiny-gray", channels=1, hidden=8)


@pytest.fixture(scope="session")
def tiny_residual(tmp_path_factory) -> registry.Model:
    return make_model(tmp_path_factory.mktemp("models"), "tiny-residual", residual_inputs=True)


@pytest.fixture(params=["tiny_rgb", "tiny_residual"])
def rgb_model(request) -> registry.Model:
    """Every RGB model variant."""
    return request.getfixturevalue(request.param)
