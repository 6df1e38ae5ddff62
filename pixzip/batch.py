"""Running a command over many files: one file at a time with a progress bar, or several at once in
worker processes; a failure is one line naming its file, and the other files go on.

The command line (pixzip.cli) says what to do to one file and how to report it; this says how the files
are gone through, so that every command treats failures and parallelism alike.
"""
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from . import codec, registry
from .container import FormatError
from .files import Failure
from .image import ImageError

# What a file's failure may raise without being a bug: shown as one line, without "please report this".
EXPECTED_ERRORS = (ImageError, FormatError, registry.ModelError, codec.DecodeError, OSError, ValueError)


@contextmanager
def progress_bar(label: str, decoding: bool):
    """A progress callback for codec calls; shown only on a terminal. Until the first progress it says so
    when the coding path's kernels are not compiled for this machine yet (the first run takes seconds more)."""
    from tqdm import tqdm

    from . import kernels

    bar = tqdm(total=0, desc=label, unit="px", unit_scale=True, leave=False, disable=None, file=sys.stderr)
    compiling = not bar.disable and not kernels.compiled_for_this_machine(decoding)
    if compiling:
        bar.set_postfix_str("compiling kernels for this machine, first run only")

    def update(done: int, total: int) -> None:
        nonlocal compiling
        bar.total = total
        bar.n = done
        if done and compiling:
            bar.set_postfix_str("", refresh=False)
            compiling = False
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def run_each(items, action, exit_on_failure: bool = True, names: list | None = None) -> list:
    """Apply action to every item (a path, by default); report each failure in one line, naming names[i]
    (default: the item). Returns the results of those that succeeded; exits 1 after the last if any failed
    (unless the caller exits itself)."""
    done = []
    for i, item in enumerate(items):
        name = names[i] if names else item
        try:
            done.append(action(item))
        except Failure as e:
            e.show()
        except EXPECTED_ERRORS as e:
            click.echo(f"pixzip: error: {name}: {e}", err=True)
        except Exception as e:  # a bug: still one line, and the other files go on
            click.echo(f"pixzip: error: {name}: unexpected {type(e).__name__}: {e} (please report this)", err=True)
    if exit_on_failure and len(done) < len(items):
        sys.exit(1)
    return done


def _job(work, path: Path, target: Path, opts: dict):
    """One file in a worker process: (stats, warnings) or (None, the one-line error). One thread each for
    torch and for the numba kernels: the workers are the parallelism, and more threads than cores made
    -j 2 on two cores a hundred times slower (threads waiting for each other)."""
    import numba
    import torch

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    try:
        return work(path, target, opts)
    except Failure as e:
        return None, [f"pixzip: error: {e.message}"]
    except EXPECTED_ERRORS as e:
        return None, [f"pixzip: error: {path}: {e}"]
    except Exception as e:  # a bug: still one line
        return None, [f"pixzip: error: {path}: unexpected {type(e).__name__}: {e} (please report this)"]


def run_files(work, jobs: list[tuple[Path, Path]], opts: dict, workers: int, report, decoding: bool) -> list[dict]:
    """Run work(path, target, opts) for every job, in this process with a progress bar, or in `workers`
    processes; report(stats, warnings) each success in input order, errors as one line each. Returns the
    stats of the files that succeeded. decoding: whether work decodes (which kernels the bar asks about)."""
    done = []
    if workers > 1 and len(jobs) > 1 and not any(str(p) == "-" for p, _ in jobs):  # stdin stays here
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # no fork of a process with torch's threads
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx) as pool:
            futures = [pool.submit(_job, work, path, target, opts) for path, target in jobs]
            for future in futures:
                stats, messages = future.result()
                if stats is None:
                    click.echo(messages[0], err=True)
                else:
                    report(stats, messages)
                    done.append(stats)
        return done

    def one(job: tuple[Path, Path]):
        path, target = job
        with progress_bar(path.name, decoding=decoding) as update:
            stats, messages = work(path, target, opts, update)
        report(stats, messages)
        return stats

    return run_each(jobs, one, exit_on_failure=False, names=[p for p, _ in jobs])
