"""Schemathesis against the real offer API and its published OpenAPI spec: no 5xx, no schema violation.

Bounded and reproducible: 100 examples per operation, every check, deterministic generation
(Schemathesis' CLI in a subprocess, against the session's server from service_fixtures.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from service_fixtures import API_KEY  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(server, tmp_path):
    st = Path(sys.executable).parent / "st"
    cmd = [str(st), "run", f"{server.url}/docs.json", "--header", f"X-API-Key: {API_KEY}", "--checks", "all",
           "--max-examples", "100", "--generation-deterministic", "--workers", "1", "--no-color",
           "--report", "junit", "--report-dir", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "No issues found" in out, out[-3000:]
    generated = int(re.search(r"(\d+) generated", out).group(1))
    assert generated >= 500, out[-2000:]  # the run really exercised the API (8 operations)
