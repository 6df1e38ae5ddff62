"""Model files: where they are, what they hold, and finding the exact one a .pxz file names.

A model file (`NAME-<sha8>.npz`) holds the integer arrays of pixzip.intnet plus its name, architecture and
config as JSON; it is identified by the SHA-256 of its bytes, never by a position in a list. Shipped models
live in the repository's models/ folder, installed as the package `pixzip.models`, and are described in
models/manifest.json. Users' models are found through PIXZIP_MODEL_PATH (folders separated by the path
separator) or given as a path.
"""
import hashlib
import io
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from . import intlstm, intnet, intscale
from .multiscale import MultiScaleConfig
from .pixelcnn import PixelCNNConfig
from .pixelrnn import DiagonalBiLSTMConfig, RowLSTMConfig

ENV_PATH = "PIXZIP_MODEL_PATH"


@dataclass(frozen=True)
class Architecture:
    config: type  # the config dataclass, stored with the weights
    network: type  # the integer network, built from a model file's arrays
    export: Callable  # a calibrated float model (pixzip.train.MODELS) -> its model file's arrays


ARCHITECTURES = {
    "pixelcnn": Architecture(PixelCNNConfig, intnet.IntegerPixelCNN, intnet.export_arrays),
    "rowlstm": Architecture(RowLSTMConfig, intlstm.IntegerRowLSTM, intlstm.export_arrays),
    "diagbilstm": Architecture(DiagonalBiLSTMConfig, intlstm.IntegerDiagonalBiLSTM, intlstm.export_arrays),
    "multiscale": Architecture(MultiScaleConfig, intscale.IntegerMultiScale, intscale.export_arrays),
}


class ModelError(ValueError):
    """A model that cannot be found or loaded."""


@dataclass(frozen=True)
class Model:
    name: str
    arch: str
    path: Path
    sha256: bytes
    network: intnet.IntegerPixelCNN  # or a subclass

    @property
    def config(self):
        return self.network.config


def shipped_dir() -> Path:
    try:
        from importlib.resources import files

        return Path(str(files("pixzip.models")))
    except (ModuleNotFoundError, TypeError):  # running from a source tree without installing
        return Path(__file__).resolve().parent.parent / "models"


def search_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get(ENV_PATH, "").split(os.pathsep) if p]
    return extra + [shipped_dir()]


def manifest() -> dict:
    path = shipped_dir() / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {"default": None, "models": []}


def save_model(path: Path, name: str, arch: str, config, arrays: dict[str, np.ndarray]) -> bytes:
    """Write a model file; returns its SHA-256."""
    meta = json.dumps({"name": name, "arch": arch, "config": config.to_dict()}, sort_keys=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.frombuffer(meta.encode(), dtype=np.uint8),
                        **{k: _smallest_int(v) for k, v in arrays.items()})
    data = buf.getvalue()
    tmp = Path(str(path) + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).digest()


def _smallest_int(a: np.ndarray) -> np.ndarray:
    """Integer arrays are stored in the narrowest type that holds them (the loader widens to int64)."""
    for t in (np.int8, np.int16, np.int32, np.int64):
        if a.size == 0 or (a.min() >= np.iinfo(t).min and a.max() <= np.iinfo(t).max):
            return a.astype(t)


@lru_cache(maxsize=8)
def _load(path: Path, mtime: float) -> Model:
    data = path.read_bytes()
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        arch = ARCHITECTURES[meta["arch"]]
        network = arch.network(arch.config.from_dict(meta["config"]), arrays)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        raise ModelError(f"{path}: not a valid pixzip model file ({e})") from None
    return Model(meta["name"], meta["arch"], path, hashlib.sha256(data).digest(), network)


def load_file(path: Path) -> Model:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    return _load(path.resolve(), path.stat().st_mtime)


def candidates() -> list[Path]:
    return [p for d in search_dirs() if d.is_dir() for p in sorted(d.glob("*.npz"))]


def resolve(name_or_path: str | None = None) -> Model:
    """A model by path, by name (shipped manifest first, then the search folders), or the default."""
    if name_or_path is None:
        name_or_path = manifest().get("default")
        if not name_or_path:
            raise ModelError("no default model is installed")
    if os.sep in name_or_path or name_or_path.endswith(".npz") or Path(name_or_path).is_file():
        return load_file(Path(name_or_path))
    for entry in manifest()["models"]:
        if entry["name"] == name_or_path:
            return load_file(shipped_dir() / entry["file"])
    for path in candidates():
        if path.name.startswith(name_or_path + "-"):
            model = load_file(path)
            if model.name == name_or_path:
                return model
    known = sorted({e["name"] for e in manifest()["models"]})
    raise ModelError(f"unknown model {name_or_path!r} (shipped: {', '.join(known) or 'none'}; "
                     f"or give a path, or add a folder to {ENV_PATH})")


def find(name: str, sha256: bytes) -> Model:
    """The exact model a file was made with: same name and same weights hash."""
    for path in candidates():
        if path.name.startswith(f"{name}-{sha256.hex()[:8]}"):
            model = load_file(path)
            if model.sha256 == sha256:
                return model
    for path in candidates():  # renamed files still count
        model = load_file(path)
        if model.sha256 == sha256:
            return model
    raise ModelError(f"this file needs model {name!r} with weights sha256 {sha256.hex()}, which is not installed; "
                     f"put {name}-{sha256.hex()[:8]}.npz in a folder listed in {ENV_PATH}")
