"""`rewards import shopify|csv` through the real CLI, then the real `rewards validate` (GX) on what it wrote.

Fixtures: tests/fixtures/imports/ holds hand-written exports in Shopify's and Square's exact formats;
a seeded generator (shopify_fixture.py) writes a larger Shopify export to train churn on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.quarantine import REASON_COLUMN, ROW_NUMBER_COLUMN
from pipelines.cli import app

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the helper importable
from shopify_fixture import person, write_shop  # noqa: E402

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "imports"
ORDERS, PRODUCTS, CUSTOMERS = (FIXTURES / f"shopify_{n}_export.csv" for n in ("orders", "products", "customers"))
SQUARE = FIXTURES / "square_item_sales.csv"
RUN_DATE = "2026-06-30"
USD_RATE = "0.92"


def _run(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False, env=env)


def _validate(raw: Path, out: Path):
    return _run("validate", raw, "--out", out / "validated", "--quarantine", out / "quarantine",
                "--report-dir", out / "reports", "--run-date", RUN_DATE)


def _program_with_rate(tmp_path: Path, inferred: Path) -> Path:
    """The inferred program with a USD rate added under [economics.exchange_rates]."""
    text = inferred.read_text()
    assert "[economics.exchange_rates]\n" in text
    path = tmp_path / "program.toml"
    path.write_text(text.replace("[economics.exchange_rates]\n", f"[economics.exchange_rates]\nUSD = {USD_RATE}\n"))
    return path


@pytest.fixture
def shop(tmp_path):
    """The hand-written Shopify fixture imported twice: without a rate for USD, then with one."""
    salt = tmp_path / "keys" / "salt"
    common = ["--products", PRODUCTS, "--customers", CUSTOMERS, "--salt-file", salt]
    first = _run("import", "shopify", "--orders", ORDERS, "--out", tmp_path / "no_rate", *common)
    program = _program_with_rate(tmp_path, tmp_path / "no_rate" / "program.toml")
    second = _run("import", "shopify", "--orders", ORDERS, "--out", tmp_path / "shop", "--program", program, *common)
    return {"no_rate": first, "with_rate": second, "out": tmp_path / "shop", "salt": salt, "tmp": tmp_path}


def _tables(out: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_csv(p) for p in out.glob("*.csv")}


def test_a_currency_without_a_rate_is_quarantined_naming_the_program_key(shop):
    result, out = shop["no_rate"], shop["tmp"] / "no_rate"
    assert result.exit_code == 1, result.output
    assert "rows read 12 = converted 8 + quarantined 4 (2 not purchases: cancelled or voided orders)" in result.output
    quarantined = pd.read_parquet(out / "quarantine" / "shopify_orders_export.parquet")
    usd = quarantined[quarantined["Name"] == "#1005"]  # raw rows: Currency is on the order's first row only
    assert usd[ROW_NUMBER_COLUMN].tolist() == [6, 7] and usd["Currency"].fillna("").tolist() == ["USD", ""]
    assert usd[REASON_COLUMN].str.contains(
        "Currency: 'USD' is not the program's currency 'EUR' and the program file has no rate for it; "
        "expected key economics.exchange_rates.USD", regex=False).all()
    report = json.loads((out / "import_report.json").read_text())
    assert report["rows_read"] == report["rows_converted"] + report["rows_quarantined"] == 12
    assert _validate(out, shop["tmp"] / "v0").exit_code == 0


def test_the_shopify_fixture_imports_and_validates_with_exit_0(shop):
    result, out = shop["with_rate"], shop["out"]
    assert result.exit_code == 0, result.output
    assert "rows read 12 = converted 10 + quarantined 2 (2 not purchases" in result.output
    assert f"program: {out / 'program.toml'} copied from" in result.output
    validated = _validate(out, shop["tmp"] / "v")
    assert validated.exit_code == 0, validated.output

    tx = pd.read_parquet(shop["tmp"] / "v" / "validated" / "transactions.parquet")
    assert sorted(tx["transaction_id"].unique()) == ["#1001", "#1002", "#1003", "#1003-refund", "#1005", "#1006",
                                                     "#1006-refund", "#1007"]  # #1004 voided, #1008 cancelled
    refunds = tx[tx["is_refund"]].set_index("transaction_id")["amount"].to_dict()
    assert refunds == {"#1003-refund": -35.50, "#1006-refund": -3.50}
    amounts = tx.set_index(["transaction_id", "product_id"])["amount"]
    assert amounts[("#1005", "CB-1")] == pytest.approx(round((18 - 2.2 * 18 / 22) * 0.92, 2))  # USD converted
    assert amounts[("#1006", "FLT-100")] == pytest.approx(6.73)  # its own 1.00 off plus its share of the rest
    assert amounts.loc["#1006"].sum() == pytest.approx(15.0 - 1.5)
    categories = tx.drop_duplicates("product_id").set_index("product_id")["category"].to_dict()
    assert categories["BEAN-ESP"] == "Coffee Beans" and categories["KET-01"] == "Kettles"  # Type, else taxonomy
    assert categories["FLT-100"] == "brewing" and categories["Oat Milk"] == "unknown"  # first tag; no SKU

    tables = _tables(out)
    offers = tables["offers"].set_index("offer_id")
    assert sorted(offers.index) == ["LOYAL5", "SPRING", "WELCOME10"]
    assert offers.loc["WELCOME10", "value"] == pytest.approx((0.80 + round(2.20 * 0.92, 2)) / 2)
    events = tables["offer_events"]
    assert events.groupby("offer_id").size().to_dict() == {"LOYAL5": 1, "SPRING": 1, "WELCOME10": 2}
    assert (events["sent_at"] == events["redeemed_at"]).all()
    customers = tables["customers"]
    assert len(customers) == 4 and customers["customer_id"].str.fullmatch(r"c_[0-9a-f]{20}").all()
    # Consent: the customers export wins over the orders' Accepts Marketing (edsger: order yes, export no).
    assert sorted(customers["marketing_consent"].tolist()) == [False, False, True, True]
    quarantined = pd.read_parquet(out / "quarantine" / "shopify_orders_export.parquet")
    assert quarantined[REASON_COLUMN].tolist() == [
        "Cancelled at: order #1004 was cancelled at 2024-05-10 12:00:00 +0200: not a purchase; "
        "Financial Status: order #1004 is 'voided': not a purchase",
        "Cancelled at: order #1008 was cancelled at 2024-06-05 11:00:00 +0200: not a purchase",
    ]


def _personal_values() -> set[str]:
    """Every email, name, street address and phone in the Shopify fixture files (and their lower case)."""
    orders = pd.read_csv(ORDERS, dtype="str")
    customers = pd.read_csv(CUSTOMERS, dtype="str")
    columns = ["Email", "Billing Name", "Billing Street", "Billing Address1", "Billing Phone", "Shipping Name",
               "Shipping Street", "Shipping Address1", "Shipping Phone", "Phone", "Notes", "Billing City"]
    values = set(orders[columns].stack().dropna()) | set(customers[[
        "Email", "First Name", "Last Name", "Default Address Address1", "Default Address Phone", "Phone", "Note"]]
        .stack().dropna())
    values |= {v.strip().lower() for v in values}
    return {v for v in values if len(v) >= 5}  # shorter words ('Ada') occur in any Parquet file ('metadata')


def _written_text(folder: Path) -> dict[Path, str]:
    """Every file under ``folder`` as text: raw bytes, plus every decoded cell for Parquet files."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", errors="replace")
        if path.suffix == ".parquet":
            text += "\n" + pd.read_parquet(path).astype("str").to_csv()
        out[path] = text
    return out


def test_no_email_name_address_or_phone_reaches_any_output_file(shop):
    personal = _personal_values()
    assert {"Ada.Lovelace@Example.com", "ada.lovelace@example.com", "Ada Lovelace", "12 Analytical Lane",
            "+44 20 7946 0018", "Lovelace", "Edsger"} <= personal  # the check looks for what it should
    assert _validate(shop["out"], shop["tmp"] / "v").exit_code == 0
    files = _written_text(shop["out"]) | _written_text(shop["tmp"] / "v")
    assert {p.name for p in files} >= {"transactions.csv", "customers.csv", "offers.csv", "offer_events.csv",
                                       "products.csv", "program.toml", "import_report.json",
                                       "shopify_orders_export.parquet", "transactions.parquet"}
    leaks = {(p.name, v) for p, text in files.items() for v in personal if v in text or v.lower() in text.lower()}
    assert not leaks
    assert not shop["salt"].resolve().is_relative_to(shop["out"].resolve())  # the salt stays outside


def test_the_salt_from_the_environment_keys_customers_and_a_salt_file_inside_the_output_is_refused(tmp_path):
    env = {"REWARDS_CUSTOMER_SALT": "s" * 32}
    a = _run("import", "shopify", "--orders", ORDERS, "--out", tmp_path / "a", env=env)
    b = _run("import", "shopify", "--orders", ORDERS, "--out", tmp_path / "b", env={"REWARDS_CUSTOMER_SALT": "t" * 32})
    assert a.exit_code == b.exit_code == 1  # USD without a rate
    ids_a, ids_b = (set(pd.read_csv(tmp_path / d / "customers.csv")["customer_id"]) for d in "ab")
    assert len(ids_a) == 3 and not ids_a & ids_b  # another salt, other ids
    inside = _run("import", "shopify", "--orders", ORDERS, "--out", tmp_path / "c", "--salt-file",
                  tmp_path / "c" / "salt", env={"REWARDS_CUSTOMER_SALT": ""})
    assert inside.exit_code == 2
    assert "lies inside the output folder" in inside.stderr and not (tmp_path / "c").exists()


def test_an_existing_program_file_is_kept_and_a_byte_order_mark_is_read(tmp_path):
    orders = tmp_path / "orders_export.csv"
    orders.write_bytes(b"\xef\xbb\xbf" + ORDERS.read_bytes())  # Shopify's "CSV for Excel"
    out = tmp_path / "shop"
    first = _run("import", "shopify", "--orders", orders, "--out", out, "--salt-file", tmp_path / "salt")
    assert first.exit_code == 1 and "rows read 12 = converted 8" in first.output
    program = _program_with_rate(tmp_path, out / "program.toml")
    (out / "program.toml").write_text(program.read_text())  # the user adds a rate to the inferred file
    again = _run("import", "shopify", "--orders", orders, "--out", out, "--salt-file", tmp_path / "salt")
    assert again.exit_code == 0, again.output
    assert "program.toml kept" in again.output and f"USD = {USD_RATE}" in (out / "program.toml").read_text()


def test_an_orders_file_without_shopify_columns_exits_2_naming_them(tmp_path):
    (tmp_path / "orders.csv").write_text("Order,Email\n#1,a@b.c\n")
    result = _run("import", "shopify", "--orders", tmp_path / "orders.csv", "--out", tmp_path / "out",
                  "--salt-file", tmp_path / "salt")
    assert result.exit_code == 2
    assert "Shopify orders export: must contain columns ['Name', 'Created at', 'Currency', 'Lineitem quantity', " \
           "'Lineitem price'], but they were missing" in result.stderr


def test_the_square_example_mapping_converts_its_export_and_quarantines_bad_rows(tmp_path):
    from data_contracts.imports.mapping import SQUARE_ITEM_SALES

    out = tmp_path / "square"
    result = _run("import", "csv", SQUARE, "--map", SQUARE_ITEM_SALES, "--out", out)
    assert result.exit_code == 1, result.output
    assert "rows read 11 = converted 8 + quarantined 3" in result.output
    assert "1 rows repeating a product of the same transaction summed into its first line" in result.output
    quarantined = pd.read_parquet(out / "quarantine" / "square_item_sales.parquet")
    assert dict(zip(quarantined[ROW_NUMBER_COLUMN], quarantined[REASON_COLUMN])) == {
        2: "customer_id (source 'Customer ID'): empty; expected a value",
        8: "amount (source 'Net Sales'): expected a number (decimal separator '.', currency symbols ['$'] "
           "stripped), got 'two dollars'",
        9: "ts (source 'Date' + 'Time'): expected a time in format '%m/%d/%Y %H:%M:%S', got '05/05/2024'",
    }
    assert "Customer Name" not in quarantined.columns  # only the mapped columns are kept
    report = json.loads((out / "import_report.json").read_text())
    assert (report["rows_read"], report["rows_converted"], report["rows_quarantined"]) == (11, 8, 3)
    tx = pd.read_csv(out / "transactions.csv")
    assert tx["amount"].tolist() == [5.50, 7.20, 9.75, 1004.50, 11.75, -4.00, 4.00]  # "$1,004.50", "($4.00)"
    assert tx["quantity"].tolist() == [1, 2, 1, 1, 2, 1, 1] and tx.loc[6, "category"] == "unknown"  # 2 lattes: 1 line
    assert tx["ts"].tolist()[0] == "2024-05-01 08:01:13" and set(tx["channel"]) == {"store"}
    assert 'currency = "USD"' in (out / "program.toml").read_text()

    validated = _validate(out, tmp_path / "v")
    assert validated.exit_code == 0, validated.output
    log = pd.read_parquet(tmp_path / "v" / "validated" / "transactions.parquet")
    assert log["is_refund"].tolist() == [False] * 5 + [True, False]
    for name in ("Mary Jackson", "Katherine Johnson", "Dorothy Vaughan"):
        assert not any(name in text for text in (_written_text(out) | _written_text(tmp_path / "v")).values())


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("store_id =", "shop ="), "unknown key 'columns.shop'; expected a column of table 'transactions'"),
    (lambda t: t.replace('decimal_separator = "."', "decimal_separator = 3"),
     "key 'format.decimal_separator': expected '.' or ','; found 3"),
    (lambda t: t.replace('amount = "Net Sales"', ""), "key 'columns.amount' is missing"),
    (lambda t: t.replace('"Net Sales"', '"Net Sale"'), "must contain columns ['Net Sale'], but they were missing"),
])
def test_a_bad_mapping_exits_2_naming_the_key(tmp_path, edit, message):
    from data_contracts.imports.mapping import SQUARE_ITEM_SALES

    mapping = tmp_path / "mapping.toml"
    mapping.write_text(edit(SQUARE_ITEM_SALES.read_text()))
    result = _run("import", "csv", SQUARE, "--map", mapping, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_generated_shopify_export_goes_through_validate_features_and_train_churn(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("REWARDS_ARTIFACT_ROOT", str(tmp_path / "mlartifacts"))
    orders = write_shop(tmp_path / "orders_export.csv", n_customers=300, seed=7)
    salt = ["--salt-file", tmp_path / "salt"]
    first = _run("import", "shopify", "--orders", orders, "--out", tmp_path / "draft", *salt)
    assert first.exit_code == 1  # USD orders: no rate yet
    program = _program_with_rate(tmp_path, tmp_path / "draft" / "program.toml")
    result = _run("import", "shopify", "--orders", orders, "--out", tmp_path / "shop", "--program", program, *salt)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "shop" / "import_report.json").read_text())
    assert report["rows_read"] == report["rows_converted"] + report["rows_quarantined"]
    assert report["counts"]["orders_converted_by_currency"]["USD"] > 0 and report["counts"]["refund_lines"] > 0

    assert _validate(tmp_path / "shop", tmp_path).exit_code == 0
    features = _run("features", "--data", tmp_path / "validated", "--out", tmp_path / "profiles.parquet")
    assert features.exit_code == 0, features.output
    assert len(pd.read_parquet(tmp_path / "profiles.parquet")) == report["counts"]["customers"]
    train = _run("train", "churn", "--data", tmp_path / "validated")
    assert train.exit_code == 0, train.output
    line = next(row for row in train.output.splitlines() if row.startswith("| model |") and "roc_auc" not in row)
    assert float(line.split("|")[2]) > 0.7  # ROC-AUC on the out-of-time split
    # Every offer event is a discount code's use (a redemption): no contrast to learn offers from.
    offers = _run("train", "offers", "--data", tmp_path / "validated")
    assert offers.exit_code == 2 and "Traceback" not in offers.output
    assert "table 'offer_events': all" in offers.stderr and "holds one outcome only" in offers.stderr
    if "-> champion" not in train.output:
        assert _run("promote", "--model", "churn-risk", "--version", "1").exit_code == 0
    out = tmp_path / "campaigns" / "list.csv"
    score = _run("score", "--as-of", RUN_DATE, "--campaign", "winback", "--out", out, "--data", tmp_path / "validated")
    assert score.exit_code == 0, score.output
    assert "retention list (no offers: no offer-response model is champion" in score.output
    summary = json.loads(out.with_name("list.summary.json").read_text())
    listed, excluded = pd.read_csv(out), pd.read_csv(out.with_name("list.exclusions.csv"))
    assert len(listed) + len(excluded) == summary["customers_in_table"] == report["counts"]["customers"]
    written = "\n".join(t for d in ("shop", "validated", "campaigns") for t in _written_text(tmp_path / d).values())
    personal = {v for i in range(300) for v in person(i).values()}
    assert len(personal) == 1200 and not {v for v in personal if v in written}
