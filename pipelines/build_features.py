"""`rewards features`: build point-in-time profiles from validated tables; write Parquet + manifest JSON.

Also renders docs/features.md from the feature catalogue: `python -m pipelines.build_features`.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pipelines import config

FEATURES_DOC = Path(__file__).resolve().parent.parent / "docs" / "features.md"


def manifest_path(profiles_path: Path) -> Path:
    """The manifest that sits next to a profiles file: ``profiles.parquet`` -> ``profiles.manifest.json``."""
    profiles_path = Path(profiles_path)
    return profiles_path.with_name(f"{profiles_path.stem}.manifest.json")


def read_manifest(profiles_path: Path) -> dict:
    """The manifest written next to ``profiles_path``."""
    path = manifest_path(profiles_path)
    if not path.exists():
        raise FileNotFoundError(f"no feature manifest at '{path}'; rebuild the profiles with `rewards features`")
    return json.loads(path.read_text())


def default_as_of(tables) -> "pd.Timestamp":  # noqa: F821 - pandas is imported lazily
    """Midnight after the last transaction: every recorded purchase is before it."""
    import pandas as pd

    last = tables["transactions"]["ts"].max()
    if pd.isna(last):
        from data_contracts.errors import EmptyTableError

        raise EmptyTableError("transactions", "no rows, so no default --as-of can be picked; pass --as-of")
    return pd.Timestamp(last).normalize() + pd.Timedelta(days=1)


def build_and_write(tables: dict, as_of, out: Path, customers_per_chunk: int | None = None,
                    program=None) -> tuple[Path, dict]:
    """Build ``program``'s profiles (with habit_tags) at ``as_of`` and write them and their manifest
    atomically (``program`` None: the built-in default program, and no program digest in the manifest).

    Features of tables that hold no rows are left out (the manifest's ``absent_tables`` names them)."""
    from data_contracts.program import program_digest
    from features import build_profiles, habit_tags
    from features.manifest import absent_features, drop_absent, input_digest, make_manifest
    from pipelines.io import atomic_path, write_frame

    built = build_profiles(tables, as_of, program=program, customers_per_chunk=customers_per_chunk)
    absent = absent_features(tables, program)
    profiles = drop_absent(built, absent)
    digest = program_digest(program) if program is not None else None
    manifest = make_manifest(profiles, as_of, input_digest(tables, as_of), digest, absent, program=program)
    profiles["habit_tags"] = habit_tags(built, program)
    manifest["non_feature_columns"] = ["customer_id", "habit_tags"]
    write_frame(profiles, out)
    with atomic_path(manifest_path(out)) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    return Path(out), manifest


def features_command(
    data: Path = typer.Option(None, "--data", help="Folder of validated tables (default: data/validated)."),
    as_of: str = typer.Option(
        None, "--as-of", help="Cutoff date/time; only rows strictly before it are used (default: day after the last transaction)."
    ),
    out: Path = typer.Option(None, "--out", help="Profiles Parquet file (default: data/profiles/profiles.parquet)."),
    chunk: int = typer.Option(None, "--chunk", help="Customers per chunk, to bound memory on large data (default: one pass)."),
) -> None:
    """Build one purchase-habit profile per customer at --as-of and write it with its manifest."""
    import time

    import pandas as pd

    from features.history import AsOfError, to_as_of
    from pipelines.io import read_validated, read_validated_program

    data = Path(data) if data else config.validated_dir()
    out = Path(out) if out else config.profiles_dir() / "profiles.parquet"
    try:
        tables = read_validated(data)
        program, note = read_validated_program(data)
        if note:
            typer.echo(f"note: {note}")
        cutoff = to_as_of(as_of) if as_of else default_as_of(tables)
        started = time.perf_counter()
        path, manifest = build_and_write(tables, cutoff, out, customers_per_chunk=chunk, program=program)
    except (FileNotFoundError, AsOfError, ValueError, KeyError) as err:
        typer.secho(f"rewards features: {err}", fg="red", err=True)
        raise typer.Exit(code=1) from None
    for table, names in manifest.get("absent_tables", {}).items():
        typer.echo(f"table '{table}' has no rows: its {len(names)} features are left out of the profiles")
    typer.echo(
        f"profiles: {manifest['row_count']} customers x {len(manifest['features'])} features at "
        f"{pd.Timestamp(cutoff).isoformat()} -> {path} ({time.perf_counter() - started:.1f}s); "
        f"manifest {manifest_path(path)}"
    )


def render_catalogue_markdown(program=None) -> str:
    """docs/features.md, generated from the declarations in features.catalogue and features.tags, for
    ``program`` (default: the built-in default program, whose catalogue the committed page shows)."""
    from features.catalogue import FAMILIES, catalogue, default_program
    from features.profiles import FAMILY_FUNCTIONS
    from features.tags import habit_tag_declarations

    program = default_program() if program is None else program
    cat = catalogue(program)
    lines = [
        "# Feature catalogue",
        "",
        "<!-- GENERATED by `python -m pipelines.build_features` from features/catalogue.py; do not edit by hand. -->",
        "",
        f"{len(cat.features)} model features in {len(FAMILIES)} families (feature set `{cat.digest()}`), the",
        f"catalogue of the built-in program `{program.name}`. Each program's catalogue follows its program file:",
        "`visit_share_<daypart>` per daypart, `channel_share_<channel>` per listed purchase channel (an open",
        "vocabulary has `top_channel_visit_share` instead), `tier_ordinal` with listed (ordered) tiers and",
        "`points_to_next_tier` with `tiers.points`; `features.catalogue.catalogue(program)` gives it and",
        "`rewards features` builds the catalogue of the program file in the validated folder.",
        "A profile has one row per customer who signed up strictly before `as_of`: `customer_id`, then these",
        "features in this order. Every window ends at `as_of` and uses only rows strictly before it",
        "(`30d` = the 30 days before `as_of`). A visit is a receipt (`transaction_id`) with at least one",
        "purchase line; spend is the sum of line amounts, so refund lines subtract. Counts are `int64` and",
        "0 when there is nothing to count; everything else is `float64` and NaN where undefined (see",
        "*missing*). Tier and points come from the customers table, which holds current values only: they",
        "are marked *not point-in-time* and `feature_names(point_in_time_only=True)` leaves them out.",
        f"Tier points (`tiers.points`): {dict(program.tiers.points) or 'none'}.",
        "",
        "## Building and checking profiles",
        "",
        "- In code: `features.build_profiles(tables, as_of, program=program)`; several cutoffs stacked with an",
        "  `as_of` column: `features.build_training_snapshots(tables, as_of_dates, program=program)`; tags:",
        "  `features.habit_tags(profiles, program)` (without `program`: the built-in program).",
        "- On files: `rewards features --data data/validated --as-of 2026-06-30 --out data/profiles/profiles.parquet`",
        "  writes the profiles plus a `habit_tags` list column, and `profiles.manifest.json` next to them:",
        "  `manifest_version`, `feature_set` (digest of names and dtypes), `as_of`, `row_count`, `input_digest`",
        "  (sha256 over the input rows a profile at `as_of` can see), `features` (`[{name, dtype}]` in order),",
        "  `non_feature_columns`. `--chunk N` builds N customers at a time to bound memory.",
        "- Consumers call `features.check_manifest(columns, manifest)`: it raises `FeatureMismatchError` naming",
        "  the missing and unexpected features (`customer_id`, `as_of`, `habit_tags` are not features).",
        "",
    ]
    for family in FAMILIES:
        func = FAMILY_FUNCTIONS[family]
        feats = cat.family(family)
        lines += [
            f"## {family} ({len(feats)} features)",
            "",
            f"Computed by `{func.__module__}.{func.__name__}`.",
            "",
            "| feature | dtype | window | missing | description |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| `{f.name}` | {f.dtype} | {f.window} | {f.missing} | {f.description} |"
            for f in feats
        ]
        lines.append("")
    from features.catalogue import long_families_markdown

    lines += long_families_markdown()
    lines += [
        "## Habit tags (not model features)",
        "",
        "`features.habit_tags(profiles, program)` gives each profile a list of these tags, for reason codes.",
        "A tag reads only its own row, so batch and online scoring agree. They are declared from the program",
        "(`features.tags.habit_tag_declarations`): one per daypart, one per product node the profiles carry a",
        "visit share of, one per purchase channel but the first listed, and the ones below that need no",
        "vocabulary. A tag whose features the profiles lack is never earned. The built-in program's tags:",
        "",
        "| tag | rule |",
        "|---|---|",
    ]
    lines += [f"| {t.name} | {t.description} |" for t in habit_tag_declarations(program)]
    return "\n".join(lines) + "\n"


def write_catalogue_docs(path: Path = FEATURES_DOC) -> bool:
    """Rewrite docs/features.md from the declarations; True when it changed."""
    text = render_catalogue_markdown()
    old = path.read_text() if path.exists() else None
    if old != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return old != text


if __name__ == "__main__":
    changed = write_catalogue_docs()
    print(f"{FEATURES_DOC} " + ("updated" if changed else "already up to date"))
