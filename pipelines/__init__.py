"""The edges: config, files, MLflow, Spark, the CLI and the synthetic data generator."""
