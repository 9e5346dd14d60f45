"""`rewards features` end to end on files: Parquet profiles + manifest, and clean errors."""

from __future__ import annotations

import json

import pandas as pd
import pandas.testing as pdt
import typer
from typer.testing import CliRunner

from features import build_profiles, check_manifest, feature_names
from pipelines.build_features import features_command, manifest_path, read_manifest

# The command as pipelines.cli registers it, in an app of its own so other commands' state does not matter.
app = typer.Typer()
app.callback()(lambda: None)
app.command("features")(features_command)


def _write_validated(tables: dict[str, pd.DataFrame], directory) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(directory / f"{name}.parquet", index=False)


def test_features_command_writes_profiles_and_manifest(tiny, as_of, tmp_path):
    _write_validated(tiny, tmp_path / "validated")
    out = tmp_path / "profiles" / "profiles.parquet"
    result = CliRunner().invoke(
        app, ["features", "--data", str(tmp_path / "validated"), "--as-of", "2026-03-01", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"3 customers x {len(feature_names())} features" in result.output
    written = pd.read_parquet(out)
    assert written["habit_tags"].map(list).tolist() == [
        ["coffee regular", "app first"], ["new member"], ["web first", "drive thru first"]]
    pdt.assert_frame_equal(written.drop(columns="habit_tags"), build_profiles(tiny, as_of), check_dtype=False)
    manifest = read_manifest(out)
    assert manifest_path(out).name == "profiles.manifest.json"
    assert manifest["row_count"] == 3 and manifest["as_of"] == "2026-03-01T00:00:00"
    assert manifest["non_feature_columns"] == ["customer_id", "habit_tags"]
    assert len(manifest["input_digest"]) == 64
    check_manifest(written.columns, manifest)
    assert not [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")]  # atomic: no leftovers


def test_default_as_of_is_the_midnight_after_the_last_transaction(tiny, tmp_path):
    _write_validated(tiny, tmp_path / "validated")
    out = tmp_path / "p.parquet"
    result = CliRunner().invoke(app, ["features", "--data", str(tmp_path / "validated"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(manifest_path(out).read_text())["as_of"] == "2026-03-07T00:00:00"  # last ts 2026-03-06 09:00


def test_missing_data_folder_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["features", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "p.parquet")])
    assert result.exit_code == 1
    assert "rewards features:" in result.output and "run `rewards validate` first" in result.output
    assert "Traceback" not in result.output


def test_bad_as_of_is_a_one_line_error(tiny, tmp_path):
    _write_validated(tiny, tmp_path / "validated")
    result = CliRunner().invoke(app, ["features", "--data", str(tmp_path / "validated"), "--as-of", "someday"])
    assert result.exit_code == 1
    assert "as_of must be a date or timestamp, got 'someday'" in result.output
