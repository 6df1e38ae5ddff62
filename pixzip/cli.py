"""The pixzip command: a thin layer over the library that parses, calls and prints.

Every error is one line on stderr and a non-zero exit code; outputs appear atomically (pixzip.files), so a
failure never leaves a partial file. How many files are gone through (one by one, or in worker processes)
is pixzip.batch's; what is done to each and how it is reported is here.
"""
import io
import json
import sys
from pathlib import Path

import click
import numpy as np

from . import codec, container, modes, registry
from .batch import EXPECTED_ERRORS, progress_bar, run_each, run_files
from .container import FormatError
from .files import (SUFFIX, Failure, check_input, check_output, compressed_name, decompressed_name, expand,
                    remove_input, targets_of, write_atomic, write_output)
from .image import IMAGE_SUFFIXES, load_image


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pixzip")
def main():
    """Learned lossless image compression (PixelCNN + arithmetic coding)."""


def compress_file(path: Path, target: Path, opts: dict, progress=None) -> tuple[dict, list[str]]:
    """Compress one image file (or "-", standard input) to target (or "-"); returns its stats and any
    warnings. Raises on failure, having written nothing."""
    warnings = []
    if str(path) == "-":
        raw = sys.stdin.buffer.read()
        image, kind = load_image(io.BytesIO(raw))
        input_bytes = len(raw)
    else:
        check_input(path)
        image, kind = load_image(path)
        input_bytes = path.stat().st_size
    if kind in modes.LOSSY_FORMATS:
        warnings.append(f"pixzip: warning: {path} is {kind}, a lossy format: its decoded pixels are kept "
                        f"losslessly, not the {kind} file's bytes")
    check_output(target, opts["force"])
    planes = modes.split(image)
    costs = np.zeros(planes.planes[0].shape[:2]) if opts["heatmap"] else None
    data, rep = codec.compress_planes(planes, _model(opts["model"]), tile=opts["tile"], device=opts["device"],
                                      progress=progress, costs=costs, adapt=opts.get("adapt", True))
    write_output(target, data, opts["force"])
    if opts["heatmap"]:
        from .heatmap import render

        buf = io.BytesIO()
        render(planes.planes[0], costs).save(buf, format="PNG")
        write_atomic(opts["heatmap"], buf.getvalue(), opts["force"])
    remove_input(path, opts["rm"])
    return {
        "input": str(path), "output": str(target), "model": rep.model, "width": rep.width,
        "height": rep.height, "mode": rep.mode, "input_bytes": input_bytes, "output_bytes": rep.bytes,
        "bpp": round(rep.bpp, 4), "bpsp": round(rep.bpsp, 4), "ideal_bpsp": round(rep.ideal_bpsp, 4),
        "metadata_bytes": sum(len(v) for v in planes.metadata.values()), "seconds": round(rep.seconds, 3),
    }, warnings


def decompress_file(path: Path, target: Path, opts: dict, progress=None) -> tuple[dict, list[str]]:
    """Decompress one .pxz file (or "-") to a PNG at target (or "-"); raises on failure, having written
    nothing."""
    import time

    if str(path) != "-":
        check_input(path)
    check_output(target, opts["force"])
    start = time.perf_counter()
    data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    image = codec.decompress(data, device=opts["device"], progress=progress)
    write_output(target, modes.png_bytes(image), opts["force"])
    remove_input(path, opts["rm"])
    return {"input": str(path), "output": str(target), "width": image.width, "height": image.height,
            "mode": image.mode, "seconds": round(time.perf_counter() - start, 3)}, []


_MODELS: dict = {}


def _model(name):
    """The resolved model, once per process."""
    if name not in _MODELS:
        _MODELS[name] = registry.resolve(name)
    return _MODELS[name]


def batch_options(f):
    for option in reversed([
        click.option("-r", "--recursive", is_flag=True, help="Go through folders."),
        click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(1),
                     help="Files coded at once, each in its own process (use the cores on many files)."),
        click.option("--keep/--rm", "keep", default=True, help="Keep (default) or remove each input once its "
                     "output is written."),
    ]):
        f = option(f)
    return f


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output file, or folder for several inputs.")
@click.option("-m", "--model", default=None, help="Model name or model file (default: the shipped default).")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file.")
@click.option("--device", default="cpu", show_default=True, help="torch device for the network (cpu, cuda).")
@click.option("--tile", default=codec.DEFAULT_TILE, show_default=True, help="Tile side in pixels.")
@click.option("--heatmap", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a PNG of what each pixel costs in bits, beside the image (one input only).")
@click.option("--no-adapt", is_flag=True, help="The network's distributions alone, no adaptive stage (format "
              "version 3: larger files, a little faster).")
@batch_options
def compress(paths, output, model, force, as_json, device, tile, heatmap, no_adapt, recursive, jobs, keep):
    """Compress images to PATH.pxz ("-": standard input to standard output). Exit code 0 only if every
    file succeeded."""
    found = expand(paths, recursive, IMAGE_SUFFIXES)
    files = [p for p, _ in found]
    if heatmap and len(files) > 1:
        raise Failure("--heatmap takes one input image")
    if sum(str(p) == "-" for p in files) > 1:
        raise Failure("standard input (-) can be read once")
    try:
        _model(model)
    except registry.ModelError as e:
        raise Failure(str(e)) from None
    several = len(files) > 1
    jobs_list = targets_of(found, output, compressed_name)
    opts = {"model": model, "force": force, "device": device, "tile": tile, "heatmap": heatmap, "rm": not keep,
            "adapt": not no_adapt}

    def report(stats: dict, warnings: list[str]):
        for w in warnings:
            click.echo(w, err=True)
        to_stderr = stats["output"] == "-"  # standard output carries the file
        if as_json:
            click.echo(json.dumps(stats), err=to_stderr)
        else:
            meta = f", {stats['metadata_bytes']} of them metadata" if stats["metadata_bytes"] else ""
            click.echo(f"{stats['input']} -> {stats['output']}: {stats['input_bytes']} -> {stats['output_bytes']} "
                       f"bytes{meta}, {stats['bpp']:.3f} bpp, {stats['bpsp']:.3f} bpsp (model ideal "
                       f"{stats['ideal_bpsp']:.3f}), {stats['seconds']:.1f} s", err=to_stderr)

    done = run_files(compress_file, jobs_list, opts, jobs, report, decoding=False)
    if several and done and not as_json:  # the summary: total bits over total pixels
        pixels = sum(d["width"] * d["height"] for d in done)
        out_bytes = sum(d["output_bytes"] for d in done)
        click.echo(f"total: {len(done)} of {len(files)} files, {sum(d['input_bytes'] for d in done)} -> "
                   f"{out_bytes} bytes, {8 * out_bytes / pixels:.3f} bpp", err=any(d["output"] == "-" for d in done))
    if len(done) < len(files):
        sys.exit(1)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output file, or folder for several inputs.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--device", default="cpu", show_default=True, help="torch device for the network (cpu, cuda).")
@batch_options
def decompress(paths, output, force, device, recursive, jobs, keep):
    """Decompress .pxz files to PNG, pixel for pixel ("-": standard input to standard output). Exit code
    0 only if every file succeeded."""
    found = expand(paths, recursive, {SUFFIX})
    files = [p for p, _ in found]
    if sum(str(p) == "-" for p in files) > 1:
        raise Failure("standard input (-) can be read once")

    def report(stats: dict, warnings: list[str]):
        click.echo(f"{stats['input']} -> {stats['output']}: {stats['width']}x{stats['height']} {stats['mode']}, "
                   f"{stats['seconds']:.1f} s", err=stats["output"] == "-")

    done = run_files(decompress_file, targets_of(found, output, decompressed_name),
                     {"force": force, "device": device, "rm": not keep}, jobs, report, decoding=True)
    if len(done) < len(files):
        sys.exit(1)


@main.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--device", default="cpu", show_default=True, help="torch device for the network (cpu, cuda).")
@click.option("-r", "--recursive", is_flag=True, help="Go through folders.")
def test_files(paths, device, recursive):
    """Check .pxz files fully (decode, compare with the stored checksum), writing nothing, like gzip -t.
    Exit code 0 only if every file is intact."""
    paths = [p for p, _ in expand(paths, recursive, {SUFFIX})]

    def one(path: Path):
        check_input(path)
        with progress_bar(path.name, decoding=True) as update:
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
    """List the models --model NAME finds: the shipped ones, then those in PIXZIP_MODEL_PATH's folders and
    in the user model folder (where pixzip export writes)."""
    entries = registry.listing()
    if not entries:
        click.echo("no models installed")
    else:
        # val bpsp: the model's files of the validation photos at export, in the format of that day (format 3:
        # the network alone; 4 and later: with the adaptive stage), so the format is shown beside it
        click.echo(f"{'name':<20} {'arch':<19} {'params':>8} {'size':>9} {'val bpsp (format)':>17}  file")
    default = registry.manifest().get("default")
    for e in entries:
        if "error" in e:
            click.echo(f"{e['name']:<20} {'?':<19} {'-':>8} {'-':>9} {'-':>17}  {e['path']} (unreadable: {e['error']})")
            continue
        arch = f"{e['arch']}/{e['config'].get('base', 'pixelcnn')}" if e["arch"] == "multiscale" else e["arch"]
        note = " (default)" if e["where"] == "shipped" and e["name"] == default else ""
        if e["hidden_by"] is not None:
            note += f" (hidden by {e['hidden_by']}: --model {e['name']} finds that one)"
        file = e["file"] if e["where"] == "shipped" else e["path"]
        val = f"{e['val_bpsp']:.3f} ({e.get('val_format', '?')})" if "val_bpsp" in e else "-"
        click.echo(f"{e['name']:<20} {arch:<19} {e.get('parameters', '-'):>8} {e.get('bytes', '-'):>9} "
                   f"{val:>17}  {file}{note}")
    click.echo(f"user models: {registry.user_dir()} (pixzip export writes there)", err=True)


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
@click.option("--minutes", type=float, help="Time budget (the schedule follows elapsed time: see --clock).")
@click.option("--clock", type=click.Choice(["wall", "cpu"]), default="wall", show_default=True,
              help="What --minutes counts: wall-clock time, or this process's CPU time (all threads; time "
              "stopped or waiting for a busy machine is not spent).")
@click.option("--steps", type=int, help="Step budget.")
@click.option("--stop-after", type=float, metavar="MINUTES",
              help="Stop this process after MINUTES (checkpoint written) while the schedule stays planned over "
              "the whole budget: a long run in several sittings, each resumed with --resume.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--resume", is_flag=True, help="Continue the run in --out.")
@click.option("--seed", type=int, help="Random seed (default: the config's, 0).")
@click.option("--threads", type=int, help="CPU threads (torch, and the integer model's kernels).")
def train(data, val, run_dir, arch, config_file, overrides, minutes, clock, steps, stop_after, device, resume,
          seed, threads):
    """Train a model on your images (then: pixzip export). Runs unchanged under
    `torchrun --nproc_per_node N --no-python pixzip train ...` (DistributedDataParallel)."""
    import torch
    from tqdm import tqdm

    from . import train as training
    from .config import load_run_config

    if (minutes is None) == (steps is None):
        raise Failure("give exactly one of --minutes and --steps")
    try:
        configs = {name: a.config for name, a in registry.ARCHITECTURES.items()}
        arch, model_dict, train_dict = load_run_config(config_file, list(overrides), configs, training.TrainConfig,
                                                       arch)
        if seed is not None:
            train_dict["seed"] = seed
        config = registry.ARCHITECTURES[arch].config.from_dict(model_dict)
        train_config = training.TrainConfig.from_dict(train_dict)
    except (TypeError, ValueError) as e:
        raise Failure(f"bad config: {e}") from None
    if threads:
        import numba

        torch.set_num_threads(threads)
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # the integer model's, validating
    try:
        path = training.train(data, run_dir, config, train_config, minutes=minutes, steps=steps, resume=resume,
                              log=lambda m: tqdm.write(m, file=sys.stderr), val=val, device=device,
                              progress_bar=True, stop_after=stop_after, clock=clock)
    except ValueError as e:
        raise Failure(str(e)) from None
    click.echo(f"checkpoint: {path}")


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", required=True, help="Model name (stored in every file it makes).")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where NAME-<sha8>.npz and manifest.json go (default: the user model folder that --model NAME "
              "searches, $XDG_DATA_HOME/pixzip/models or ~/.local/share/pixzip/models; in a checkout, "
              "`--models-dir models` updates the shipped models).")
@click.option("--val", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Measure the actual bpsp on this folder of images.")
@click.option("--data", "data_note", help="Training data description, if the checkpoint does not name it.")
def export(run_dir, name, models_dir, val, data_note):
    """Export a trained run to a model file usable by compress and decompress."""
    from .export import export as do_export

    models_dir = registry.user_dir() if models_dir is None else models_dir
    try:
        entry = do_export(run_dir, name, models_dir, val, command=" ".join(["pixzip", *sys.argv[1:]]),
                          data_note=data_note)
    except (OSError, ValueError, KeyError) as e:
        raise Failure(f"{run_dir}: cannot export ({e})") from None
    click.echo(json.dumps(entry, indent=2))
    searched = any(registry.same_folder(models_dir, d) for d in registry.search_dirs())
    click.echo(f"pixzip: wrote {models_dir / entry['file']}" + ("" if searched else f" (not searched by name: give "
               f"its path to --model, or add {models_dir} to {registry.ENV_PATH})"), err=True)


@main.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-m", "--models", multiple=True, help="pixzip models (default: the default model).")
@click.option("--codecs", help="Comma-separated classical codecs (prefixes of: png, webp, jpeg-xl, jpeg-ls, "
              "jpeg 2000); default all.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Report folder: report.md, results.csv, plot.png (bpsp against decode time).")
@click.option("--no-adapt", is_flag=True, help="Also each model without the adaptive stage (format version 3).")
def bench(folders, models, codecs, out_dir, no_adapt):
    """Compare pixzip with the classical lossless codecs (sizes verified, times measured)."""
    from . import bench as benchmark
    from .train import find_images

    images = [p for folder in folders for p in find_images(folder)]
    if not images:
        raise Failure("no images found")
    try:
        rows, missing, startup = benchmark.run(images, list(models) or [None],
                                               codecs.split(",") if codecs else None,
                                               log=lambda m: click.echo(m, err=True),
                                               adapt=(True, False) if no_adapt else (True,))
    except EXPECTED_ERRORS as e:
        raise Failure(str(e)) from None
    click.echo(benchmark.markdown(rows, missing, startup))
    if out_dir:
        for problem in benchmark.write_report(rows, missing, startup, out_dir):
            click.echo(f"pixzip: {problem}", err=True)


if __name__ == "__main__":
    main()
