"""Files for the command line: output names, atomic writes, inputs found in folders.

Outputs appear atomically (a temporary file, then a no-clobber link or, with force, a rename), so a failure
never leaves a partial file, and an existing file is never replaced without force.
"""
import os
import sys
import tempfile
from pathlib import Path

import click

SUFFIX = ".pxz"


class Failure(click.ClickException):
    """An error the command line shows as one line, `pixzip: error: MESSAGE`, exiting 1."""

    def show(self, file=None):
        click.echo(f"pixzip: error: {self.message}", err=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes, force: bool) -> None:
    """Write all of data to path or nothing; never replace an existing file unless force."""
    if path.exists() and not force:
        raise Failure(f"{path} already exists (use --force to overwrite)")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
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


def check_output(target: Path, force: bool) -> None:
    """Refuse early, before any work, an output that exists (write_atomic checks again when writing)."""
    if str(target) != "-" and target.exists() and not force:
        raise Failure(f"{target} already exists (use --force to overwrite)")


def output_path(source: Path, out: Path | None, several: bool, name, under: Path | None = None) -> Path:
    """Where source's output goes: beside it, or into the folder out (keeping its path below `under`, the
    folder it was found in with -r, so that files of the same name in subfolders stay apart)."""
    if out is None:
        return name(source)
    if out.is_dir():
        if under is not None:
            target = out / name(source).relative_to(under)
            target.parent.mkdir(parents=True, exist_ok=True)
            return target
        return out / name(source).name
    if several:
        raise Failure(f"with several inputs, -o must be an existing folder: {out}")
    return out


def compressed_name(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def decompressed_name(path: Path) -> Path:
    stem = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.name
    return path.with_name(stem if stem.lower().endswith(".png") else stem + ".png")


def expand(paths, recursive: bool, suffixes: set[str]) -> list[tuple[Path, Path | None]]:
    """Command-line paths -> (file, the folder it was found in or None): folders (with -r) become the files
    below them with these suffixes. A folder without -r stays in the list and fails there, with the other
    files still done."""
    out = []
    for p in map(Path, paths):
        if str(p) != "-" and p.is_dir() and recursive:
            out += [(f, p) for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in suffixes]
        else:
            out.append((p, None))
    return out


def targets_of(found: list[tuple[Path, Path | None]], output: Path | None, name) -> list[tuple[Path, Path]]:
    """(input, output) for every input; "-" goes to -o or standard output."""
    several = len(found) > 1
    return [(p, (output or Path("-")) if str(p) == "-" else output_path(p, output, several, name, under))
            for p, under in found]


def check_input(path: Path) -> None:
    if path.is_dir():
        raise Failure(f"{path} is a folder (use -r to go through folders)")


def remove_input(path: Path, remove: bool) -> None:
    if remove and str(path) != "-":
        path.unlink()
