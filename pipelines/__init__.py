"""The edges: config, files, MLflow, Spark, the CLI and the synthetic data generator."""

import os

# LightGBM's OpenMP threads spin while they wait by default; on a shared 2-core machine that makes
# n_jobs=2 many times slower than one thread. Passive waiting must be set before lightgbm loads, and
# every command, the server and batch scoring pass through this package first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
