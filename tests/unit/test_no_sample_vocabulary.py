"""Vocabularies are data: no code outside the coffee scenario names the sample's categories, tiers or channels.

Every .py file under features/, models/, serving/, pipelines/ and data_contracts/ is scanned for the
words below (whole words, any case; comments and docstrings count). The coffee scenario (its
generator, ``pipelines/scenarios/coffee/``, re-exported by ``pipelines/synthetic.py``) and its program
file (``data_contracts/programs/coffee.toml``, not a .py file) are the sample's own place. The few
exceptions are listed with their reason, by file and the exact text of the line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("features", "models", "serving", "pipelines", "data_contracts")
SAMPLE_WORDS = re.compile(r"\b(coffee|bakery|bronze|push)\b", re.IGNORECASE)
SCENARIO = ("pipelines/scenarios/coffee/", "pipelines/synthetic.py")

# (file, text on the line): why it may name a sample word.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("data_contracts/program.py", 'COFFEE_PROGRAM_PATH = PROGRAMS_DIR / "coffee.toml"'):
        "the built-in program's file name",
    ("pipelines/generate.py", '"coffee": "pipelines.synthetic",'): "the scenario registry: the scenario's name",
    ("pipelines/generate.py", 'scenario: Scenario = typer.Option("coffee", "--scenario"'): "the default scenario's name",
    ("pipelines/generate.py", "(default: the coffee sample)"): "the default scenario's name",
    ("pipelines/scenarios/__init__.py", "coffee (the built-in sample), grocery, webshop"): "the scenarios' names",
    ("pipelines/scenarios/grocery.py", '"produce", "dairy", "bakery", "meat",'):
        "a department of the grocery scenario's own program file, which its generator writes",
}
# Helper TAXO replaces the attach pairs with per-node features in the same round; drop these at the merge.
PENDING: dict[tuple[str, str], str] = {}  # nothing left pending: the attach pairs are in the program file


def _scanned() -> list[Path]:
    files = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith(SCENARIO):
                files.append(path)
    return files


def _hits() -> list[tuple[str, int, str]]:
    allowed = {**EXCEPTIONS, **PENDING}
    out = []
    for path in _scanned():
        rel = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if SAMPLE_WORDS.search(line) and not any(f == rel and text in line for f, text in allowed):
                out.append((rel, number, line.strip()))
    return out


def test_no_code_outside_the_coffee_scenario_names_its_vocabulary():
    hits = _hits()
    assert hits == [], "sample vocabulary outside the coffee scenario (take it from the program file):\n" + "\n".join(
        f"{f}:{n}: {line}" for f, n, line in hits)


def test_the_scan_covers_the_packages_and_leaves_out_only_the_scenario():
    scanned = {p.relative_to(ROOT).as_posix() for p in _scanned()}
    assert {"features/catalogue.py", "models/phrasing.py", "models/policy/context.py", "serving/service.py",
            "pipelines/demo.py", "data_contracts/schema.py"} <= scanned
    assert not [f for f in scanned if f.startswith(SCENARIO)]
    assert any(f.startswith("pipelines/scenarios/coffee/") for f in
               (p.relative_to(ROOT).as_posix() for p in (ROOT / "pipelines").rglob("*.py")))


@pytest.mark.parametrize("entry", sorted({**EXCEPTIONS, **PENDING}))
def test_every_exception_is_still_needed(entry):
    path, text = entry
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    assert any(text in line and SAMPLE_WORDS.search(line) for line in lines), f"{entry} no longer applies: drop it"


def test_the_word_match_finds_a_sample_word_and_not_a_longer_name():
    assert SAMPLE_WORDS.search('cold_start_tier: str = "bronze"') and SAMPLE_WORDS.search("a Push message")
    assert not SAMPLE_WORDS.search("tea_coffee coffee_program pushed")
