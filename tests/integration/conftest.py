"""Fixtures shared by the integration modules: one trained data folder and one real offer API server.

Declared here (not imported into each test module) so pytest builds them once per session.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make service_fixtures importable
from service_fixtures import client, server, service_env  # noqa: E402,F401
