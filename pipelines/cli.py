"""The `rewards` command line. Each command lives in its own pipelines module; heavy imports stay inside them."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="rewards",
    help="Next-best-offer recommendations for loyalty programs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (command name, module, function): one line per command.
_COMMANDS = [
    ("generate", "pipelines.generate", "generate_command"),
    ("init", "pipelines.init", "init_command"),
    ("validate", "pipelines.validate", "validate_command"),
    ("features", "pipelines.build_features", "features_command"),
    ("train", "pipelines.train", "train_command"),
    ("promote", "pipelines.registry", "promote_command"),
    ("models", "pipelines.registry", "models_command"),
    ("serve", "pipelines.serve", "serve_command"),
    ("score", "pipelines.score", "score_command"),
    ("simulate", "pipelines.simulate", "simulate_command"),
    ("measure", "pipelines.measure", "measure_command"),
    ("report", "pipelines.report", "report_command"),
    ("demo", "pipelines.demo", "demo_command"),
]

for _name, _module, _function in _COMMANDS:
    app.command(_name)(getattr(importlib.import_module(_module), _function))
app.add_typer(importlib.import_module("pipelines.importers").app, name="import")  # rewards import shopify|csv


if __name__ == "__main__":
    app()
