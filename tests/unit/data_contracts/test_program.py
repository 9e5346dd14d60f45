"""The program file: the coffee program equals the old fixed lists; bad files fail naming the key."""

from __future__ import annotations

import pandas as pd
import pytest

from data_contracts.inference import infer_program
from data_contracts.program import (
    COFFEE_PROGRAM_PATH,
    ProgramError,
    coffee_program,
    parse_program,
    program_digest,
    program_to_toml,
)
from data_contracts.rules import table_rules
from data_contracts.schema import TABLES

COFFEE = COFFEE_PROGRAM_PATH.read_text()


def test_coffee_program_declares_the_sample_vocabularies():
    p = coffee_program()
    assert p.allowed("tiers") == ("bronze", "silver", "gold", "platinum")
    assert p.allowed("hierarchy") == ("coffee", "tea", "cold_drinks", "bakery", "breakfast", "lunch", "snacks", "merchandise")
    assert p.allowed("offer_channels") == ("app", "push", "email", "store", "web", "drive_thru")
    assert [d.name for d in p.dayparts] == ["before_9", "9_to_11", "11_to_14", "14_to_17", "after_17"]
    assert (p.economics.currency, p.economics.gross_margin_by_node["coffee"]) == ("EUR", 0.75)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: "loyalty_points = true\n" + t, r"unknown key 'loyalty_points'"),
        (lambda t: t.replace('currency = "EUR"', "currency = 978"), r"key 'economics.currency': expected a valid string; found 978"),
        (lambda t: t.replace("gross_margin_rate = 0.65", "gross_margin_rate = 1.5"),
         r"key 'economics.gross_margin_rate': expected less than or equal to 1; found 1.5"),
        (lambda t: t.replace('[tiers]\nkind = "listed"', '[tiers]\nkind = "ranked"'),
         r"key 'tiers.kind': expected 'listed', 'open' or 'none'; found \"ranked\""),
        (lambda t: t.replace("[regions]\nkind = \"listed\"\nvalues", "[regions]\nkind = \"open\"\nvalues"),
         r"key 'regions': 'values' is only for kind = \"listed\""),
        (lambda t: t.replace('end_hour = 11.0', 'end_hour = 10.0'), r"dayparts must cover the day"),
        (lambda t: t.replace("[offer_types]", "[offer_typos]"), r"key 'offer_types' is missing"),
        (lambda t: t.replace('levels = ["category"]', 'levels = ["category"]\n[hierarchy.nodes.brand]\nkind = "open"'),
         r"nodes given for \['brand'\], which are not among the levels"),
    ],
)
def test_a_bad_program_file_fails_naming_the_key(edit, message):
    with pytest.raises(ProgramError, match=r"program file 'bad.toml': .*" + message):
        parse_program(edit(COFFEE), "bad.toml")


def test_program_error_says_what_to_do():
    with pytest.raises(ProgramError, match=r"or write a new one with `rewards init DIR`"):
        parse_program("name = 'x'", "x.toml")


def test_digest_ignores_comments_and_layout_but_not_content():
    reformatted = parse_program(program_to_toml(coffee_program()), "copy.toml")
    assert program_digest(reformatted) == program_digest(coffee_program())
    changed = parse_program(COFFEE.replace("0.65", "0.6"), "changed.toml")
    assert program_digest(changed) != program_digest(coffee_program())


def test_open_vocabulary_checks_non_empty_text_and_names_the_program():
    program = parse_program(COFFEE.replace('[regions]\nkind = "listed"\nvalues = ["north", "south", "east", "west", "central"]',
                                           '[regions]\nkind = "open"'), "mine.toml")
    rules = {r.column: r for r in table_rules(TABLES["customers"], program) if r.kind in ("in_set", "not_empty")}
    assert rules["region"].kind == "not_empty"
    assert rules["region"].describe() == "region is not empty text (vocabulary 'regions' of program file 'mine.toml')"
    assert rules["tier"].kind == "in_set"


def test_init_infers_levels_coarsest_first_and_lists_values_seen():
    products = pd.DataFrame({
        "product_id": ["P1", "P2", "P3", "P4"],
        "commodity": ["milk", "cheese", "nappies", "wipes"],
        "department": ["dairy", "dairy", "baby", "baby"],
    })
    tx = pd.DataFrame({"customer_id": ["C1"], "ts": ["2026-01-01"], "amount": ["1"], "channel": ["web"]})
    program, decisions = infer_program({"products": products, "transactions": tx}, "shop")
    assert program.hierarchy.levels == ["department", "commodity"]
    assert program.allowed("hierarchy.department") == ("baby", "dairy")
    assert program.allowed("purchase_channels") == ("web",)
    assert program.allowed("regions") is None and program.tiers.kind == "none"
    assert any("coarsest first" in d for d in decisions)
    assert parse_program(program_to_toml(program)).model_dump() == program.model_dump()  # what init writes reads back
