"""The pixzip command: a thin layer over the library that parses, calls and prints.

Every error is one line on stderr and a non-zero exit code; outputs appear atomically (temporary file,
then a no-clobber link or, with --force, a rename), so a failure never leaves a partial file.
"""
import io
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np

from . import codec, container, modes, registry
from .container import FormatError
from .image import ImageError, load_image

SUFFIX = ".pxz"
EXPECTED_ERRORS = (ImageError, FormatError, registry.ModelError, codec.DecodeError, OSError, ValueError)


class Failure(click.ClickException):
    def show(self, file=None):
        click.echo(f"pixzip: error: {self.message}", err=True)


def write_atomic(path: Path, data: bytes, force: bool) -> None:
    """Write all of data to path or nothing; never replace an existing file unless force."""
    if path.exists() and not force:
        raise Failure(f"{path} already exists (use --force to overwrite)")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if path appeared meanwhile
            except FileExistsError:
                raise Failure(f"{path} already exists (use --force to overwrite)") from None
            os.unlink(tmp)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_output(target: Path, data: bytes, force: bool) -> None:
    """A file written atomically, or standard output for "-"."""
    if str(target) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_atomic(target, data, force)


def output_path(source: Path, out: Path | None, several: bool, name) -> Path:
    if out is None:
        return name(source)
    if out.is_dir():
        return out / name(source).name
    if several:
        raise Failure(f"with several inputs, -o must be an existing folder: {out}")
    return out


def compressed_name(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def decompressed_name(path: Path) -> Path:
    stem = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.name
    return path.with_name(stem if stem.lower().endswith(".png") else stem + ".png")


@contextmanager
def progress_bar(label: str):
    """A progress callback for codec calls; shown only on a terminal."""
    from tqdm import tqdm

    bar = tqdm(total=0, desc=label, unit="px", unit_scale=True, leave=False, disable=None, file=sys.stderr)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def run_each(paths, action, exit_on_failure: bool = True) -> list:
    """Apply action to every path; report each failure in one line. Returns the results of the files
    that succeeded; exits 1 after the last file if any failed (unless the caller exits itself)."""
    done = []
    for path in paths:
        try:
            done.append(action(Path(path)))
        except Failure as e:
            e.show()
        except EXPECTED_ERRORS as e:
            click.echo(f"pixzip: error: {path}: {e}", err=True)
        except Exception as e:  # a bug: still one line, and the other files go on
            click.echo(f"pixzip: error: {path}: unexpected {type(e).__name__}: {e} (please report this)", err=True)
    if exit_on_failure and len(done) < len(paths):
        sys.exit(1)
    return done


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pixzip")
def main():
    """Learned lossless image compression (PixelCNN + arithmetic coding)."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output file, or folder for several inputs.")
@click.option("-m", "--model", default=None, help="Model name or model file (default: the shipped default).")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file.")
@click.option("--device", default="cpu", show_default=True, help="torch device for the network (cpu, cuda).")
@click.option("--tile", default=codec.DEFAULT_TILE, show_default=True, help="Tile side in pixels.")
@click.option("--heatmap", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a PNG of what each pixel costs in bits, beside the image (one input only).")
def compress(paths, output, model, force, as_json, device, tile, heatmap):
    """Compress images to PATH.pxz ("-": standard input to standard output)."""
    if heatmap and len(paths) > 1:
        raise Failure("--heatmap takes one input image")
    try:
        m = registry.resolve(model)
    except registry.ModelError as e:
        raise Failure(str(e)) from None

    if sum(str(p) == "-" for p in paths) > 1:
        raise Failure("standard input (-) can be read once")

    def one(path: Path):
        if str(path) == "-":  # standard input -> standard output, unless -o
            raw = sys.stdin.buffer.read()
            image, kind = load_image(io.BytesIO(raw))
            target, input_bytes = output or Path("-"), len(raw)
        else:
            image, kind = load_image(path)
            target, input_bytes = output_path(path, output, len(paths) > 1, compressed_name), path.stat().st_size
        if kind in modes.LOSSY_FORMATS:
            click.echo(f"pixzip: warning: {path} is {kind}, a lossy format: its decoded pixels are kept "
                       f"losslessly, not the {kind} file's bytes", err=True)
        if str(target) != "-" and target.exists() and not force:
            raise Failure(f"{target} already exists (use --force to overwrite)")
        planes = modes.split(image)
        costs = np.zeros(planes.planes[0].shape[:2]) if heatmap else None
        with progress_bar(path.name) as update:
            data, rep = codec.compress_planes(planes, m, tile=tile, device=device, progress=update, costs=costs)
        write_output(target, data, force)
        if heatmap:
            from .heatmap import render

            buf = io.BytesIO()
            render(planes.planes[0], costs).save(buf, format="PNG")
            write_atomic(heatmap, buf.getvalue(), force)
        stats = {
            "input": str(path), "output": str(target), "model": rep.model, "width": rep.width,
            "height": rep.height, "mode": rep.mode, "input_bytes": input_bytes, "output_bytes": rep.bytes,
            "bpp": round(rep.bpp, 4), "bpsp": round(rep.bpsp, 4), "ideal_bpsp": round(rep.ideal_bpsp, 4),
            "seconds": round(rep.seconds, 3),
        }
        to_stderr = str(target) == "-"  # standard output carries the file
        if as_json:
            click.echo(json.dumps(stats), err=to_stderr)
        else:
            click.echo(f"{path} -> {target}: {input_bytes} -> {rep.bytes} bytes, {rep.bpp:.3f} bpp, "
                       f"{rep.bpsp:.3f} bpsp (model ideal {rep.ideal_bpsp:.3f}), {rep.seconds:.1f} s", err=to_stderr)
        return stats

    done = run_each(paths, one, exit_on_failure=False)
    if len(paths) > 1 and done and not as_json:  # the summary: total bits over total pixels
        pixels = sum(d["width"] * d["height"] for d in done)
        out_bytes = sum(d["output_bytes"] for d in done)
        click.echo(f"total: {len(done)} of {len(paths)} files, {sum(d['input_bytes'] for d in done)} -> "
                   f"{out_bytes} bytes, {8 * out_bytes / pixels:.3f} bpp", err=any(d["output"] == "-" for d in done))
    if len(done) < len(paths):
        sys.exit(1)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output file, or folder for several inputs.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--device", default="cpu", show_default=True, help="torch device for the network (cpu, cuda).")
def decompress(paths, output, force, device):
    """Decompress .pxz files to PNG, pixel for pixel ("-": standard input to standard output)."""
    import time

    if sum(str(p) == "-" for p in paths) > 1:
        raise Failure("standard input (-) can be read once")

    def one(path: Path):
        stdin = str(path) == "-"  # standard input -> standard output, unless -o
        target = (output or Path("-")) if stdin else output_path(path, output, len(paths) > 1, decompressed_name)
        if str(target) != "-" and target.exists() and not force:
            raise Failure(f"{target} already exists (use --force to overwrite)")
        start = time.perf_counter()
        with progress_bar(path.name) as update:
            data = sys.stdin.buffer.read() if stdin else path.read_bytes()
            image = codec.decompress(data, device=device, progress=update)
        write_output(target, modes.png_bytes(image), force)
        click.echo(f"{path} -> {target}: {image.width}x{image.height} {image.mode}, "
                   f"{time.perf_counter() - start:.1f} s", err=str(target) == "-")

    run_each(paths, one)


@main.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--device", default="cpu", show_default=True, help="torch device for the network (cpu, cuda).")
def test_files(paths, device):
    """Check .pxz files fully (decode, compare with the stored checksum), writing nothing, like gzip -t.
    Exit code 0 only if every file is intact."""
    def one(path: Path):
        with progress_bar(path.name) as update:
            image = codec.decompress_planes(path.read_bytes(), device=device, progress=update)
        height, width = image.planes[0].shape[:2]
        click.echo(f"{path}: OK ({width}x{height} {image.mode}, pixels match the checksum)")

    run_each(paths, one)


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def info(path):
    """Show the header of a .pxz file."""
    try:
        header, payloads = container.unpack(path.read_bytes())
    except FormatError as e:
        raise Failure(f"{path}: {e}") from None
    channels = sum(1 if p == "L" else 3 for p in header.planes)
    bits = 8 * path.stat().st_size
    rows = [
        ("format version", header.version), ("image", f"{header.width}x{header.height} {header.mode}"),
        ("model", header.model), ("weights sha256", header.weights_sha256.hex()),
        ("pixels sha256", header.pixels_sha256.hex()), ("tile", f"{header.tile} px, {header.chunk} per chunk"),
        ("planes", ", ".join(f"{p} ({n} bytes)" for p, n in zip(header.planes, header.payload_lengths))),
        ("metadata", ", ".join(f"{k} ({len(v)} bytes)" for k, v in header.metadata.items()) or "none"),
        ("rate", f"{bits / (header.width * header.height):.3f} bpp, "
                 f"{bits / (header.width * header.height * channels):.3f} bpsp"),
    ]
    for k, v in rows:
        click.echo(f"{k:>15}: {v}")


@main.command()
def models():
    """List the shipped models."""
    man = registry.manifest()
    if not man["models"]:
        click.echo("no models installed")
        return
    click.echo(f"{'name':<20} {'arch':<10} {'params':>8} {'size':>9} {'val bpsp':>9}  file")
    for e in man["models"]:
        default = " (default)" if e["name"] == man.get("default") else ""
        click.echo(f"{e['name']:<20} {e['arch']:<10} {e['parameters']:>8} {e['bytes']:>9} "
                   f"{e.get('val_bpsp', float('nan')):>9.3f}  {e['file']}{default}")


@main.command()
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of training images.")
@click.option("--val", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of validation images: bpsp of the integer model (what files cost) every "
              "train.val_minutes and at the end.")
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (checkpoint.pt).")
@click.option("--arch", type=click.Choice(list(registry.ARCHITECTURES)), help="Architecture (default: pixelcnn, "
              "or the config file's).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML file: arch, [model] and [train] settings (see train/*.toml).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a setting: model.KEY, train.KEY, or a bare KEY (repeatable).")
@click.option("--minutes", type=float, help="Time budget (the schedule follows elapsed time).")
@click.option("--steps", type=int, help="Step budget.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--resume", is_flag=True, help="Continue the run in --out.")
@click.option("--seed", type=int, help="Random seed (default: the config's, 0).")
@click.option("--threads", type=int, help="CPU threads for torch.")
def train(data, val, run_dir, arch, config_file, overrides, minutes, steps, device, resume, seed, threads):
    """Train a model on your images (then: pixzip export). Runs unchanged under
    `torchrun --nproc_per_node N --no-python pixzip train ...` (DistributedDataParallel)."""
    import torch
    from tqdm import tqdm

    from . import train as training
    from .config import load_run_config

    if (minutes is None) == (steps is None):
        raise Failure("give exactly one of --minutes and --steps")
    try:
        arch, model_dict, train_dict = load_run_config(config_file, list(overrides), training.PixelCNNConfig,
                                                       training.TrainConfig, arch)
        if arch not in registry.ARCHITECTURES:
            raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(registry.ARCHITECTURES)})")
        if seed is not None:
            train_dict["seed"] = seed
        config = registry.ARCHITECTURES[arch][0].from_dict(model_dict)
        train_config = training.TrainConfig.from_dict(train_dict)
    except (TypeError, ValueError) as e:
        raise Failure(f"bad config: {e}") from None
    if threads:
        torch.set_num_threads(threads)
    try:
        path = training.train(data, run_dir, config, train_config, minutes=minutes, steps=steps, resume=resume,
                              log=lambda m: tqdm.write(m, file=sys.stderr), val=val, device=device,
                              progress_bar=True)
    except ValueError as e:
        raise Failure(str(e)) from None
    click.echo(f"checkpoint: {path}")


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", required=True, help="Model name (stored in every file it makes).")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("models"),
              show_default=True, help="Where NAME-<sha8>.npz and manifest.json go.")
@click.option("--val", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Measure the actual bpsp on this folder of images.")
@click.option("--data", "data_note", help="Training data description, if the checkpoint does not name it.")
def export(run_dir, name, models_dir, val, data_note):
    """Export a trained run to a model file usable by compress and decompress."""
    from .export import export as do_export

    try:
        entry = do_export(run_dir, name, models_dir, val, command=" ".join(["pixzip", *sys.argv[1:]]),
                          data_note=data_note)
    except (OSError, ValueError, KeyError) as e:
        raise Failure(f"{run_dir}: cannot export ({e})") from None
    click.echo(json.dumps(entry, indent=2))


@main.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-m", "--models", multiple=True, help="pixzip models (default: the default model).")
@click.option("--codecs", help="Comma-separated classical codecs (prefixes of: png, webp, jpeg-xl, jpeg-ls, "
              "jpeg 2000); default all.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Report folder: report.md, results.csv, plot.png (bpsp against decode time).")
def bench(folders, models, codecs, out_dir):
    """Compare pixzip with the classical lossless codecs (sizes verified, times measured)."""
    from . import bench as benchmark
    from .train import find_images

    images = [p for folder in folders for p in find_images(folder)]
    if not images:
        raise Failure("no images found")
    try:
        rows, missing, startup = benchmark.run(images, list(models) or [None],
                                               codecs.split(",") if codecs else None,
                                               log=lambda m: click.echo(m, err=True))
    except EXPECTED_ERRORS as e:
        raise Failure(str(e)) from None
    click.echo(benchmark.markdown(rows, missing, startup))
    if out_dir:
        for problem in benchmark.write_report(rows, missing, startup, out_dir):
            click.echo(f"pixzip: {problem}", err=True)


if __name__ == "__main__":
    main()
