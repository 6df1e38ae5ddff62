"""Model files: where they are, what they hold, and finding the exact one a .pxz file names.

A model file (`NAME-<sha8>.npz`) holds the integer arrays of pixzip.intnet plus its name, architecture and
config as JSON; it is identified by the SHA-256 of its bytes, never by a position in a list. Shipped models
live in the repository's models/ folder, installed as the package `pixzip.models`, and are described in
models/manifest.json. Users' models are given as a path, or found by name in the folders of
PIXZIP_MODEL_PATH (separated by the path separator) and in the user model folder, where `pixzip export`
writes by default: $XDG_DATA_HOME/pixzip/models, or ~/.local/share/pixzip/models.

A name is looked up in the shipped manifest first, so a shipped name always means the shipped model (a .pxz
made with --model pixelcnn means the same model everywhere); then PIXZIP_MODEL_PATH's folders (set for one
command or script, so it comes before the standing per-user folder, as PATH does), then the user folder.
`pixzip export` refuses to make a model that a shipped name would hide, and `pixzip models` marks any
model that another of the same name hides. A file that cannot be read or does not hold a valid model is a
ModelError, whichever way it was found.
"""
import hashlib
import importlib
import io
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from . import intlstm, intnet, intscale, modelcheck
from .intformat import DiagonalBiLSTMConfig, MultiScaleConfig, PixelCNNConfig, RowLSTMConfig
from .network import MultiScaleNetwork, Network

ENV_PATH = "PIXZIP_MODEL_PATH"


@dataclass(frozen=True)
class Architecture:
    """Everything an architecture's name stands for, in one record: adding an architecture is adding one.

    The float model is named by "module:Class" and imported on first use, so that loading and running model
    files (compress, decompress) never imports training code; the rest is the integer path's."""

    name: str  # as stored in model files and checkpoints, and given to --arch
    config: type  # the config dataclass (pixzip.intformat), stored with the weights
    network: type  # the integer network, built from a model file's arrays
    export: Callable  # a calibrated float model -> its model file's arrays
    model_path: str  # "module:Class" of the trainable float model
    conditional: bool = False  # can be a multi-scale model's base: has conditional versions (below)

    @property
    def model(self) -> type:
        """The trainable float model class (a torch.nn.Module taking the config)."""
        module, _, cls = self.model_path.partition(":")
        return getattr(importlib.import_module(module), cls)

    @property
    def conditional_network(self) -> type:
        """The integer network's conditional version: a multi-scale model's full stage (pixzip.intscale)."""
        self._check_conditional()
        return intscale.conditional_network(self.network)

    @property
    def conditional_model(self) -> type:
        """The float model's conditional version (pixzip.multiscale)."""
        self._check_conditional()
        from .multiscale import conditional_model  # training code: imported only when training asks

        return conditional_model(self.model)

    def _check_conditional(self) -> None:
        if not self.conditional:
            raise ValueError(f"architecture {self.name!r} has no conditional version (it is no multi-scale base)")


ARCHITECTURES = {a.name: a for a in [
    Architecture("pixelcnn", PixelCNNConfig, intnet.IntegerPixelCNN, intnet.export_arrays,
                 "pixzip.pixelcnn:PixelCNN", conditional=True),
    Architecture("rowlstm", RowLSTMConfig, intlstm.IntegerRowLSTM, intlstm.export_arrays,
                 "pixzip.pixelrnn:RowLSTM", conditional=True),
    Architecture("diagbilstm", DiagonalBiLSTMConfig, intlstm.IntegerDiagonalBiLSTM, intlstm.export_arrays,
                 "pixzip.pixelrnn:DiagonalBiLSTM", conditional=True),
    Architecture("multiscale", MultiScaleConfig, intscale.IntegerMultiScale, intscale.export_arrays,
                 "pixzip.multiscale:MultiScale"),
]}


def arch_of(config: PixelCNNConfig) -> str:
    """The architecture name of a model config (its exact type: a RowLSTMConfig is also a PixelCNNConfig)."""
    for name, arch in ARCHITECTURES.items():
        if type(config) is arch.config:
            return name
    raise KeyError(type(config).__name__)


class ModelError(ValueError):
    """A model that cannot be found or loaded."""


@dataclass(frozen=True)
class Model:
    name: str
    arch: str
    path: Path
    sha256: bytes
    network: Network | MultiScaleNetwork  # what pixzip.codec runs (pixzip.network)

    @property
    def config(self):
        return self.network.config


def shipped_dir() -> Path:
    try:
        from importlib.resources import files

        return Path(str(files("pixzip.models")))
    except (ModuleNotFoundError, TypeError):  # running from a source tree without installing
        return Path(__file__).resolve().parent.parent / "models"


def user_dir() -> Path:
    """The per-user model folder (the XDG base directory specification): $XDG_DATA_HOME/pixzip/models, or
    ~/.local/share/pixzip/models when XDG_DATA_HOME is unset or not absolute (the specification ignores it then)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "pixzip" / "models"


def env_dirs() -> list[Path]:
    return [Path(p) for p in os.environ.get(ENV_PATH, "").split(os.pathsep) if p]


def search_dirs() -> list[Path]:
    """The folders searched for model files, in the order names are looked up in (after the shipped manifest):
    PIXZIP_MODEL_PATH's, the shipped one, the user's."""
    dirs = []
    for d in env_dirs() + [shipped_dir(), user_dir()]:
        if not any(same_folder(d, e) for e in dirs):
            dirs.append(d)
    return dirs


def same_folder(a: Path, b: Path) -> bool:
    """Whether two paths name the same folder."""
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def manifest(folder: Path | None = None) -> dict:
    """The manifest.json of a model folder (default: the shipped one); an empty one where there is none, or
    where another folder's cannot be read (its model files are still found)."""
    path = (shipped_dir() if folder is None else Path(folder)) / "manifest.json"
    empty = {"default": None, "models": []}
    if folder is None:
        return json.loads(path.read_text()) if path.exists() else empty
    try:
        man = json.loads(path.read_text())
        return man if isinstance(man.get("models"), list) else empty
    except (OSError, ValueError, AttributeError):
        return empty


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
def _load(path: Path, mtime: float, size: int) -> Model:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {e.strerror or e}") from None
    try:
        arrays = _arrays(data)
    except Exception as e:  # zipfile.BadZipFile, zlib.error, EOFError, ValueError...: any damage
        raise ModelError(f"{path}: not a valid pixzip model file (damaged or not a model: {_reason(e)})") from None
    try:
        if "meta" not in arrays:
            raise KeyError("meta")
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        if meta.get("arch") not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {meta.get('arch')!r}")
        modelcheck.check_arrays(arrays)
        arch = ARCHITECTURES[meta["arch"]]
        network = arch.network(arch.config.from_dict(meta["config"]), arrays)
        model = Model(str(meta["name"]), meta["arch"], path, hashlib.sha256(data).digest(), network)
    except Exception as e:  # a missing array, a wrong shape or range: the builders raise what they raise
        raise ModelError(f"{path}: not a valid pixzip model file ({_reason(e)})") from None
    return model


def _arrays(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _reason(e: Exception) -> str:
    if isinstance(e, KeyError):
        return f"no {e.args[0]!s}" if e.args else "an array is missing"
    return f"{type(e).__name__}: {e}" if type(e) not in (ValueError, TypeError) else str(e)


def load_file(path: Path) -> Model:
    """The model in a file; ModelError if it is missing, unreadable, damaged or not a valid model."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    stat = path.stat()
    return _load(path.resolve(), stat.st_mtime, stat.st_size)


@lru_cache(maxsize=64)
def _file_sha256(path: Path, mtime: float, size: int) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def file_sha256(path: Path) -> bytes:
    """The SHA-256 of a file's bytes (a model's identity), without reading it as a model; OSError if unreadable."""
    stat = path.stat()
    return _file_sha256(path.resolve(), stat.st_mtime, stat.st_size)


def candidates() -> list[Path]:
    return [p for d in search_dirs() if d.is_dir() for p in sorted(d.glob("*.npz"))]


def _named(name: str, path: Path) -> bool:
    """Whether a file is called NAME-<sha8>.npz, as export names them."""
    return re.fullmatch(re.escape(name) + r"-[0-9a-f]{8}\.npz", path.name) is not None


def _by_name(name: str, folder: Path) -> Model | None:
    """Model NAME in a folder: the file its manifest names for it, or else a file NAME-*.npz holding it. A
    damaged NAME-<sha8>.npz is a ModelError; other files are skipped if they are not readable (such as
    NAME-eq800-<sha8>.npz, another name's)."""
    listed = [e.get("file") for e in manifest(folder)["models"] if isinstance(e, dict) and e.get("name") == name]
    if listed and isinstance(listed[-1], str) and (folder / listed[-1]).is_file():
        return load_file(folder / listed[-1])
    for path in sorted(folder.glob(f"{_glob_escape(name)}-*.npz")):
        try:
            model = load_file(path)
        except ModelError:
            if _named(name, path):
                raise
            continue
        if model.name == name:
            return model
    return None


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


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
    for folder in search_dirs():
        model = _by_name(name_or_path, folder) if folder.is_dir() else None
        if model is not None:
            return model
    known = sorted({e["name"] for e in manifest()["models"]})
    raise ModelError(f"unknown model {name_or_path!r} (shipped: {', '.join(known) or 'none'}; or give a path, or "
                     f"export it into {user_dir()}, or add its folder to {ENV_PATH})")


def find(name: str, sha256: bytes) -> Model:
    """The exact model a file was made with: same weights hash (NAME-<sha8>.npz first; renamed files still
    count). Files are compared by their bytes' hash before any is read as a model, so a damaged file is
    never the one; the one with the right hash that is not a valid model is a ModelError."""
    expected = f"{name}-{sha256.hex()[:8]}.npz"
    found = candidates()
    mismatched = []
    for path in sorted(found, key=lambda p: p.name != expected):
        try:
            digest = file_sha256(path)
        except OSError as e:
            if path.name == expected:
                raise ModelError(f"cannot read model file {path}: {e.strerror or e}") from None
            continue
        if digest == sha256:
            return load_file(path)
        if path.name == expected:
            mismatched.append(path)
    where = f"{user_dir()} or a folder listed in {ENV_PATH}"
    if mismatched:
        raise ModelError(f"this file needs model {name!r} with weights sha256 {sha256.hex()}; {mismatched[0]} has "
                         f"other bytes (damaged, or another model under its name): put the right file in {where}")
    raise ModelError(f"this file needs model {name!r} with weights sha256 {sha256.hex()}, which is not installed; "
                     f"put {expected} in {where}")


def listing() -> list[dict]:
    """Every model that a name can reach, in lookup order: the shipped manifest's, then each search folder's
    (its manifest's entries, and model files it does not list). Each entry is a manifest entry plus "path",
    "where" (shipped, PIXZIP_MODEL_PATH, user) and "hidden_by": the path of the earlier model of the same name
    that --model NAME finds instead, or None; an unreadable file has "error"."""
    out = [{**e, "path": shipped_dir() / e["file"], "where": "shipped"} for e in manifest()["models"]]
    env = env_dirs()
    for folder in search_dirs():
        if same_folder(folder, shipped_dir()) or not folder.is_dir():
            continue
        where = "user" if same_folder(folder, user_dir()) and not any(same_folder(folder, d) for d in env) else ENV_PATH
        entries = [e for e in manifest(folder)["models"]
                   if isinstance(e, dict) and "name" in e and (folder / str(e.get("file"))).is_file()]
        listed = {e["file"] for e in entries}
        for e in entries:
            out.append({**e, "path": folder / e["file"], "where": where})
        for path in sorted(folder.glob("*.npz")):
            if path.name not in listed:
                out.append({**_describe(path), "path": path, "where": where})
    first: dict[str, Path] = {}
    for e in out:
        e["hidden_by"] = first.get(e["name"]) if "error" not in e else None
        if "error" not in e:
            first.setdefault(e["name"], e["path"])
    return out


def _describe(path: Path) -> dict:
    """A manifest-like entry of a model file no manifest lists."""
    try:
        m = load_file(path)
    except ModelError as e:
        return {"name": path.name.rsplit("-", 1)[0], "file": path.name, "error": str(e)}
    return {"name": m.name, "file": path.name, "arch": m.arch, "config": m.config.to_dict(),
            "bytes": path.stat().st_size}
