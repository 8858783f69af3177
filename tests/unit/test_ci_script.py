"""The CI entry point must at least parse: a shell syntax error there fails CI before any test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_ci_script_is_valid_bash_and_runs_make_test() -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    script = ROOT / ".ci" / "run"
    result = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in script.read_text().splitlines()]
    assert "make test" in lines, "CI must run the README's test command"
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines
