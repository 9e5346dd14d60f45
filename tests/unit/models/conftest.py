"""Fixtures for the model tests."""

import os

# LightGBM's OpenMP threads spin-wait by default, which makes n_jobs=2 crawl on a shared 2-core box;
# this must be set before lightgbm is first imported (see pipelines/train.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
