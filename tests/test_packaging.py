"""A plain (non-editable) install carries the shipped models: run from outside the source tree."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_installed_package_compresses_with_shipped_model(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps"]
    subprocess.run(pip + [str(REPO)], check=True, cwd=tmp_path)
    sample = tmp_path / "sample.png"
    sample.write_bytes((REPO / "samples" / "astronaut.png").read_bytes())
    pixzip = str(venv / "bin" / "pixzip")
    for args in (["models"], ["compress", str(sample)],
                 ["decompress", str(sample) + ".pxz", "-o", str(tmp_path / "out.png")]):
        run = subprocess.run([pixzip, *args], capture_output=True, text=True, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
    assert (tmp_path / "out.png").exists()
