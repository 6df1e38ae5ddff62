"""Typed configuration: dataclasses built from dicts, TOML files and key=value overrides, with clear errors.

A training run is described by an architecture name, the model's config dataclass (stored inside every
checkpoint and weights file) and the training settings (pixzip.train.TrainConfig). A TOML file holds them as

    arch = "pixelcnn"
    [model]
    hidden = 48
    [train]
    crop = 48

and `--set key=value` overrides any of them: `model.hidden=64`, `train.lr=1e-3`, or a bare `hidden=64`
when the key belongs to one of the two only.
"""
import json
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def from_dict(cls: type[T], d: dict, what: str = "config") -> T:
    """cls(**d), refusing unknown keys and values of the wrong type (an int is accepted for a float)."""
    types = {f.name: f.type for f in fields(cls)}
    unknown = sorted(set(d) - set(types))
    if unknown:
        raise ValueError(f"unknown {what} keys: {', '.join(unknown)} (known: {', '.join(types)})")
    values = {}
    for key, value in d.items():
        want = types[key]
        if want is bool and value in (0, 1) and not isinstance(value, float):
            value = bool(value)
        elif want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ValueError(f"{what} key {key} must be {want.__name__}, not {value!r}")
        values[key] = value
    return cls(**values)


def parse_value(text: str) -> Any:
    """A command-line value: JSON (numbers, true/false, quoted strings), else the bare string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def load_run_config(path: Path | None, overrides: list[str], model_classes: dict[str, type], train_cls: type,
                    arch: str | None) -> tuple[str, dict, dict]:
    """(arch, model dict, train dict) from an optional TOML file and key=value overrides. arch (if given)
    wins over the file's; model_classes maps each architecture to its config class."""
    doc: dict = {}
    if path is not None:
        try:
            doc = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ValueError(f"cannot read config {path}: {e}") from None
        extra = sorted(set(doc) - {"arch", "model", "train"})
        if extra:
            raise ValueError(f"unknown sections or keys in {path}: {', '.join(extra)} (known: arch, [model], [train])")
    arch = arch or doc.get("arch", "pixelcnn")
    if arch not in model_classes:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(model_classes)})")
    model_cls = model_classes[arch]
    model, train = dict(doc.get("model", {})), dict(doc.get("train", {}))
    model_keys, train_keys = {f.name for f in fields(model_cls)}, {f.name for f in fields(train_cls)}
    for pair in overrides:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, not {pair!r}")
        key, value = pair.split("=", 1)
        section, _, name = key.rpartition(".")
        if section == "model" or (not section and name in model_keys and name not in train_keys):
            model[name] = parse_value(value)
        elif section == "train" or (not section and name in train_keys):
            train[name] = parse_value(value)
        else:
            raise ValueError(f"unknown config key {key!r} (model keys: {', '.join(sorted(model_keys))}; "
                             f"train keys: {', '.join(sorted(train_keys))})")
    return arch, model, train
