"""The `zrq-worker` console script that `pip install` puts beside the interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_zrq_worker_console_script_is_installed():
    script = Path(sys.executable).parent / "zrq-worker"
    shown = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    for option in ("--queue", "--concurrency", "--processes", "--time-limit", "--grace"):
        assert option in shown.stdout
