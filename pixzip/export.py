"""Export a training run to a model file `NAME-<sha8>.npz` and its manifest entry."""
import json
import os
import re
from pathlib import Path

import torch

from . import codec, container, registry
from .pixelcnn import PixelCNN
from .train import find_images
from .image import ImageError, load_pixels


def load_checkpoint(path: Path) -> tuple[PixelCNN, dict]:
    state = torch.load(path, weights_only=False, map_location="cpu")
    arch = state.get("arch", "pixelcnn")
    record = registry.ARCHITECTURES[arch]
    model = record.model(record.config.from_dict(state["config"]))
    model.load_state_dict(state["model"])
    return model, state


def measure(model: registry.Model, folder: Path) -> dict:
    """Actual .pxz sizes on every image of a folder: total bits over total subpixels."""
    bits = subpixels = ideal = 0.0
    for path in find_images(folder):
        try:
            pixels, mode = load_pixels(path)
        except ImageError as e:
            raise ImageError(f"{path}: {e}") from None
        data, report = codec.compress_pixels(pixels, mode, model)
        bits += 8 * len(data)
        ideal += report.ideal_bits
        subpixels += pixels.size
    return {"bpsp": round(bits / subpixels, 4), "ideal_bpsp": round(ideal / subpixels, 4)}


def check_name(name: str, out_dir: Path) -> None:
    """Refuse a name that --model NAME could not reach: one read as a path, or a shipped model's name (which
    always means the shipped model, pixzip.registry) outside the folder where that name is kept - the
    shipped folder, or a checkout's models/ whose manifest lists it."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name) or name.endswith(".npz"):
        raise ValueError(f"model name {name!r}: use letters, digits and . _ + - (not ending in .npz)")
    shipped = {e["name"] for e in registry.manifest()["models"]}
    if name in shipped and not out_dir.resolve() == registry.shipped_dir().resolve() and name not in {
            e.get("name") for e in registry.manifest(out_dir)["models"] if isinstance(e, dict)}:
        raise ValueError(f"{name!r} is a shipped model's name, which --model {name} keeps meaning; choose another name")


def export(run_dir: Path, name: str, out_dir: Path, val: Path | None = None, command: str | None = None,
           data_note: str | None = None) -> dict:
    """Write out_dir/NAME-<sha8>.npz and add (or replace) its entry in out_dir/manifest.json."""
    out_dir = Path(out_dir)
    check_name(name, out_dir)
    model, state = load_checkpoint(Path(run_dir) / "checkpoint.pt")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f"{name}.npz.tmp"
    arch = state.get("arch", "pixelcnn")
    sha = registry.save_model(tmp, name, arch, model.config, registry.ARCHITECTURES[arch].export(model))
    final = out_dir / f"{name}-{sha.hex()[:8]}.npz"
    os.replace(tmp, final)
    entry = {
        "name": name,
        "file": final.name,
        "sha256": sha.hex(),
        "arch": arch,
        "config": model.config.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "bytes": final.stat().st_size,
        "training": {
            "data": state.get("data") or data_note,
            "steps": state["step"],
            "minutes": round(state["seconds"] / 60, 1),
            "pixels": state["step"] * state["train"]["batch"] * state["train"]["crop"] ** 2
            * state.get("world_size", 1),
            "world_size": state.get("world_size", 1),
            "train": state["train"],
            "final_train_bpsp": next((e["train_bpsp"] for e in reversed(state["log"]) if "train_bpsp" in e), None),
            "validation": [e for e in state["log"] if "val_bpsp" in e],
            "command": command,
        },
    }
    if val is not None:
        m = registry.load_file(final)
        result = measure(m, val)
        entry["val_bpsp"], entry["val_ideal_bpsp"] = result["bpsp"], result["ideal_bpsp"]
        entry["val_tile"], entry["val_format"] = codec.DEFAULT_TILE, container.VERSION
        entry["val_data"] = str(val)
    manifest_path = out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"default": name, "models": []}
    manifest["models"] = [e for e in manifest["models"] if e["name"] != name] + [entry]
    manifest.setdefault("default", name)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return entry
