"""Batch scoring in process: chunking, holdout, accounting and atomic outputs, on the seeded sample.

The policy and the features are the real ones; the two models are small transparent stand-ins
(a logistic curve of two features each) so that these tests stay fast and exact. The champion
models from a real MLflow store are exercised in tests/integration/test_score_cli.py.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models.campaign import CampaignCountError, CampaignSummary
from pipelines.config import SAMPLE_END_DATE
from pipelines.score import (
    ChunkDecider,
    ScoreError,
    ScoreRequest,
    build_chunk_decider,
    output_paths,
    run_score,
    score_customers,
    table_chunks,
    whole_customers,
    write_campaign,
)

AS_OF = pd.Timestamp(SAMPLE_END_DATE)
N_CUSTOMERS = 900  # a slice of the sample keeps each scoring run around a second


class OfferStandIn:
    """P(redeem) rises with the customer's (shrunk) redemption rate of the offer's type."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        z = -2.5 + 4.0 * X["cust_redeem_rate_offer_type_shrunk"].fillna(0).to_numpy() + 0.1 * X["offer_value"].to_numpy()
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])


class ChurnStandIn:
    """Churn risk rises with the days since the last visit."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-(X["days_since_last_visit"].fillna(365).to_numpy() - 30) / 10))
        return np.column_stack([1 - p, p])


MODELS = {"offer": (OfferStandIn(), "7"), "churn": (ChurnStandIn(), "3")}


@pytest.fixture(scope="module")
def tables(sample):
    """The sample restricted to its first customers (all customer-keyed tables), offers whole."""
    ids = np.sort(sample.tables["customers"]["customer_id"].to_numpy(dtype=object))[:N_CUSTOMERS]
    out = {}
    for name, frame in sample.tables.items():
        out[name] = frame[frame["customer_id"].isin(ids)].reset_index(drop=True) if "customer_id" in frame else frame
    return out


def _request(tmp_path, **overrides) -> ScoreRequest:
    args = {"as_of": AS_OF, "campaign": "spring", "out": tmp_path / "list.parquet", "k": 3, "holdout": 0.1,
            "chunk_size": 250, "progress": False, "workers": 1}
    args.update(overrides)
    return ScoreRequest(**args)


def _rows(tables, request) -> pd.DataFrame:
    scorer = build_chunk_decider(request, tables, MODELS)
    chunks = table_chunks(tables, request.as_of, request.chunk_size)
    return pd.concat(list(score_customers(chunks, scorer)), ignore_index=True)


@pytest.fixture(scope="module")
def rows(tables, tmp_path_factory):
    return _rows(tables, _request(tmp_path_factory.mktemp("rows")))


def test_profiles_built_per_chunk_equal_the_whole_build(tables):
    from features import build_profiles

    whole = build_profiles(tables, AS_OF)
    chunks = [chunk.profiles() for chunk in table_chunks(tables, AS_OF, 200)]
    assert len(chunks) == -(-N_CUSTOMERS // 200)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


def test_rows_do_not_depend_on_the_chunk_size(tables, rows, tmp_path):
    one_chunk = _rows(tables, _request(tmp_path, chunk_size=N_CUSTOMERS))
    pd.testing.assert_frame_equal(one_chunk, rows)


def test_every_customer_is_listed_with_offers_or_excluded_with_a_reason(tables, rows):
    profiled = set(tables["customers"].loc[tables["customers"]["signup_date"] < AS_OF, "customer_id"])
    assert set(rows["customer_id"]) == profiled
    ok = rows["status"] == "ok"
    assert not (set(rows.loc[ok, "customer_id"]) & set(rows.loc[~ok, "customer_id"]))
    assert not rows.loc[~ok, "customer_id"].duplicated().any()
    per_customer = rows[ok].groupby("customer_id")
    assert per_customer.size().between(1, 3).all()
    assert (per_customer["reward_category"].nunique() == per_customer.size()).all()  # one per category
    assert (per_customer["rank"].apply(list) == per_customer.size().map(lambda n: list(range(1, n + 1)))).all()
    assert rows.loc[ok, "offer_id"].notna().all() and rows.loc[~ok, "offer_id"].isna().all()
    # Customers without consent never get an offer.
    no_consent = set(tables["customers"].loc[~tables["customers"]["marketing_consent"], "customer_id"])
    assert no_consent and not (no_consent & set(rows.loc[ok, "customer_id"]))
    assert rows["churn_risk"].between(0, 1).all()
    assert rows.loc[ok, "reasons"].map(len).gt(0).all()


def test_holdout_is_seeded_by_campaign_name_and_holds_the_asked_fraction(tables, rows, tmp_path):
    holdout = set(rows.loc[rows["holdout"], "customer_id"])
    n = rows["customer_id"].nunique()
    assert 0.06 * n < len(holdout) < 0.14 * n  # asked 0.10
    assert (rows.loc[rows["holdout"], "status"] == "control_group").all()
    assert rows.loc[rows["holdout"], "offer_id"].isna().all()
    again = _rows(tables, _request(tmp_path, chunk_size=400))
    assert set(again.loc[again["holdout"], "customer_id"]) == holdout
    other = _rows(tables, _request(tmp_path, campaign="autumn"))
    other_holdout = set(other.loc[other["holdout"], "customer_id"])
    assert other_holdout and len(other_holdout & holdout) < 0.5 * len(holdout)


def test_offers_option_restricts_the_candidates(tables, tmp_path):
    out = _rows(tables, _request(tmp_path, offer_ids=["O001", "O005"], k=2))
    assert set(out["offer_id"].dropna()) <= {"O001", "O005"}


def test_written_list_summary_and_exclusions_add_up(tables, tmp_path):
    request = _request(tmp_path)
    summary = run_score(request, models=MODELS, tables=tables)
    paths = output_paths(request.out)
    listed = pd.read_parquet(paths["list"])
    excluded = pd.read_parquet(paths["exclusions"])
    on_disk = json.loads(paths["summary"].read_text())
    timing_only = {"seconds"}
    assert on_disk == {k: v for k, v in json.loads(json.dumps(summary, default=str)).items() if k not in timing_only}
    assert summary["customers_considered"] == summary["customers_with_offers"] + summary["customers_excluded"]
    assert summary["customers_excluded"] == len(excluded) == sum(summary["excluded_by_reason"].values())
    offered = listed[~listed["holdout"]]
    assert summary["customers_with_offers"] == offered["customer_id"].nunique()
    assert summary["offers"] == len(offered) == sum(summary["offers_per_reward_category"].values())
    assert summary["holdout_customers"] == int(listed["holdout"].sum()) == summary["excluded_by_reason"]["control_group"]
    assert summary["expected_redemptions"] == pytest.approx(offered["p_redeem"].sum(), abs=1e-3)
    cost = offered["offer_id"].map(tables["offers"].set_index("offer_id")["cost_per_redemption"])
    assert summary["expected_cost"] == pytest.approx((offered["p_redeem"] * cost).sum(), abs=0.05)
    assert set(listed.columns) >= {"customer_id", "offer_id", "rank", "p_redeem", "expected_value", "churn_risk",
                                   "reasons", "holdout", "offer_model_version", "churn_model_version", "as_of"}
    assert (listed["offer_model_version"] == "7").all() and (listed["churn_model_version"] == "3").all()
    assert (listed["as_of"] == AS_OF).all()
    assert listed["customer_id"].is_monotonic_increasing


def _with_budget_left(tables, request, offer_id: str, left: int) -> dict:
    """The tables with ``offer_id``'s redemption budget set so that ``left`` redemptions remain at send time."""
    from models.campaign import budget_remaining_by_offer
    from models.policy import index_history, prepare_offers

    offers = tables["offers"].copy()
    at = offers["offer_id"] == offer_id
    offers.loc[at, "budget_redemptions"] = 10**6
    used = 10**6 - budget_remaining_by_offer(prepare_offers(offers), index_history(tables["offer_events"]), request.send_at)[offer_id]
    offers.loc[at, "budget_redemptions"] = int(used) + left
    return {**tables, "offers": offers}


def test_budgets_cap_the_list_and_every_withdrawn_offer_is_accounted_for(tables, rows, tmp_path):
    request = _request(tmp_path, k=1)  # ranks moving up: tests/unit/models/test_campaign.py
    popular = rows.loc[rows["rank"] == 1, "offer_id"].value_counts().index[0]
    tables = _with_budget_left(tables, request, popular, left=12)
    before = _rows(tables, request)
    before = before[before["status"] == "ok"]  # the same decisions before the budget pass
    summary = run_score(request, models=MODELS, tables=tables)
    paths = output_paths(request.out)
    listed, excluded = pd.read_parquet(paths["list"]), pd.read_parquet(paths["exclusions"])
    offered = listed[~listed["holdout"]]
    budget = {b["offer_id"]: b for b in summary["budget"]}
    limited = {o: b for o, b in budget.items() if b["budget_remaining"] is not None}
    assert limited[popular]["withdrawn_for_budget"] > 0 and limited[popular]["offers"] > 0
    assert summary["offers_over_budget"] == []
    for oid, b in limited.items():
        kept, was = offered[offered["offer_id"] == oid], before[before["offer_id"] == oid]
        assert kept["p_redeem"].sum() <= b["budget_remaining"] + 1e-9
        assert b["withdrawn_for_budget"] == len(was) - len(kept)
        if b["withdrawn_for_budget"] and len(kept):  # the best customers keep it
            gone = was[~was["customer_id"].isin(kept["customer_id"])]
            assert kept["score"].min() >= gone["score"].max()
    unlimited = [o for o in budget if o not in limited]
    assert unlimited and all(budget[o]["withdrawn_for_budget"] == 0 for o in unlimited)
    assert summary["offers_withdrawn_for_budget"] == len(before) - len(offered)
    # Customers who lost their offer are excluded with the reason.
    lost = set(before["customer_id"]) - set(offered["customer_id"])
    reasons = excluded.set_index("customer_id")["reason"]
    assert lost and all(reasons[c] == "budget_exhausted" for c in lost)
    assert summary["excluded_by_reason"]["budget_exhausted"] == len(lost)
    assert summary["customers_considered"] == summary["customers_with_offers"] + summary["customers_excluded"]


def test_csv_list_joins_reasons(tables, tmp_path):
    request = _request(tmp_path, out=tmp_path / "list.csv", k=1)
    summary = run_score(request, models=MODELS, tables=tables)
    listed = pd.read_csv(request.out)
    assert len(listed) == summary["rows_in_list"]
    offered = listed[~listed["holdout"]]
    assert offered["reasons"].str.len().gt(0).all()
    assert pd.read_csv(output_paths(request.out)["exclusions"]).shape[0] == summary["customers_excluded"]


def test_a_failure_mid_run_leaves_the_previous_outputs_intact(tables, rows, tmp_path):
    request = _request(tmp_path)
    run_score(request, models=MODELS, tables=tables)
    paths = output_paths(request.out)
    before = {name: p.read_bytes() for name, p in paths.items()}

    def crashing():
        yield rows.iloc[:50]
        raise RuntimeError("worker died")

    summary = CampaignSummary(cost_per_redemption={})
    with pytest.raises(RuntimeError, match="worker died"):
        write_campaign(crashing(), request.out, summary, {})
    assert {name: p.read_bytes() for name, p in paths.items()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())  # no temp files


def test_a_failure_on_a_first_run_leaves_no_output(rows, tmp_path):
    out = tmp_path / "fresh.parquet"

    def crashing():
        yield rows.iloc[:50]
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        write_campaign(crashing(), out, CampaignSummary(cost_per_redemption={}), {})
    assert list(tmp_path.iterdir()) == []


def test_lost_customers_stop_the_run(rows, tmp_path):
    """Counts that do not add up (a customer's offers in one chunk, and excluded in another) fail loudly."""
    offered = rows[rows["status"] == "ok"].iloc[:1]
    clash = offered.assign(status="no_eligible_offer", offer_id=None, rank=pd.NA)
    summary = CampaignSummary(cost_per_redemption={})
    summary.add(offered)
    summary.add(clash)
    with pytest.raises(CampaignCountError, match="1 customers appear in more than one chunk"):
        summary.check()


def test_whole_customers_never_splits_a_customer_across_chunks(rows):
    cuts = [rows.iloc[i:i + 7] for i in range(0, len(rows), 7)]
    chunks = list(whole_customers(cuts))
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), rows)
    firsts = [set(c["customer_id"]) for c in chunks]
    assert all(not (a & b) for a, b in zip(firsts, firsts[1:]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"holdout": 1.0}, "--holdout must be in"),
        ({"out": "list.txt"}, "must end in .parquet or .csv"),
        ({"channel": " "}, "--channel must not be empty"),
        ({"chunk_size": 0}, "--chunk-size must be >= 1"),
        ({"send_at": "2026-06-01"}, "must not be before --as-of"),
        ({"objective": "profit"}, r"--objective must be one of \['expected_value', 'uplift'\], got 'profit'"),
    ],
)
def test_bad_requests_are_refused_with_the_option_named(overrides, message, tmp_path):
    with pytest.raises(ScoreError, match=message):
        _request(tmp_path, **overrides)


def test_cli_prints_one_line_for_a_bad_option(tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(
        app, ["score", "--as-of", SAMPLE_END_DATE, "--campaign", "x", "--out", str(tmp_path / "a.txt")]
    )
    assert result.exit_code == 2
    assert "must end in .parquet or .csv" in result.output
    assert "Traceback" not in result.output


def test_chunk_decider_is_picklable_for_spark_and_decides_the_same_after(tables, tmp_path):
    import pickle

    decider = build_chunk_decider(_request(tmp_path), tables, MODELS)
    shipped = pickle.loads(pickle.dumps(decider))
    assert isinstance(shipped, ChunkDecider)
    chunk = next(table_chunks(tables, AS_OF, 200)).scoring_input()
    pd.testing.assert_frame_equal(shipped(chunk), decider(chunk))


def test_long_runs_show_a_progress_bar_on_stderr(tables, tmp_path, capsys):
    run_score(_request(tmp_path, chunk_size=300, progress=True), models=MODELS, tables=tables)
    err = capsys.readouterr().err
    assert "scoring customers" in err and f"{N_CUSTOMERS}/{N_CUSTOMERS}" in err
    run_score(_request(tmp_path, chunk_size=N_CUSTOMERS, progress=True), models=MODELS, tables=tables)
    assert "scoring customers" not in capsys.readouterr().err  # one chunk: nothing to show


def test_the_default_chunk_keeps_customers_x_active_offers_bounded():
    """50,000 customers a chunk up to 200 active offers; past that the chunk shrinks so a chunk's
    customers x offers arrays stay within CHUNK_PAIRS (10,000 at 1,000 offers), never below 2,000."""
    from pipelines.score.request import CHUNK_PAIRS, chunk_size_for

    assert chunk_size_for(20) == chunk_size_for(200) == 50_000
    assert chunk_size_for(1_000) == 10_000 and chunk_size_for(1_000) * 1_000 <= CHUNK_PAIRS
    assert chunk_size_for(100_000) == 2_000 and chunk_size_for(0) == 50_000
    # chunks that carry their purchase lines (taxonomy columns): at most CHUNK_PURCHASES lines a chunk
    assert chunk_size_for(10, purchases_per_customer=250) == 3_000 == chunk_size_for(1_000, 250)


def test_a_chunks_tables_cut_by_customer_rows_equal_a_filter_on_its_customers(tables):
    """CustomerRows.cut: the customer-keyed tables' rows of the chunk's customers, in their original order
    (what a filter gives, same dtypes once as_frames decodes them); tables without customer_id whole."""
    from pipelines.score.chunks import CustomerRows, as_frames

    rows = CustomerRows({n: tables[n] for n in ("transactions", "offer_events", "offers", "customers")})
    ids = sorted(tables["customers"]["customer_id"].astype(str))[5:40] + ["nobody"]
    cut = as_frames(rows.cut(ids))
    for name in ("transactions", "offer_events", "customers"):
        frame = tables[name]
        pd.testing.assert_frame_equal(cut[name], frame[frame["customer_id"].astype(str).isin(ids)].reset_index(drop=True))
    assert len(cut["transactions"]) > 0 and cut["offers"] is tables["offers"]


def test_a_cut_of_the_purchase_log_read_as_codes_holds_only_its_chunks_rows_and_values(tables, tmp_path):
    """read_log keeps the log's strings as dictionary codes (the parent never holds them as Python strings);
    a worker gets only its chunk's rows, each dictionary cut to the values of those rows, and decoded they
    are what pd.read_parquet and a filter give. Every line goes to exactly one chunk: the counts add up."""
    import pyarrow as pa

    from models.offer_taxonomy import TAXONOMY_TRANSACTION_COLUMNS
    from pipelines.io import write_frame
    from pipelines.score.chunks import CustomerRows, as_frames, read_log

    path = write_frame(tables["transactions"], tmp_path / "transactions.parquet")
    log = read_log(path, TAXONOMY_TRANSACTION_COLUMNS)
    assert pa.types.is_dictionary(log.schema.field("customer_id").type)
    assert pa.types.is_dictionary(log.schema.field("transaction_id").type)
    rows = CustomerRows({"transactions": log})
    whole = pd.read_parquet(path, columns=list(log.column_names))
    ids = sorted(tables["customers"]["customer_id"].astype(str))
    parts = [rows.cut(ids[lo: lo + 60]) for lo in range(0, len(ids), 60)]
    assert sum(p["transactions"].num_rows for p in parts) == len(whole)  # every line in exactly one chunk
    first = parts[0]["transactions"]
    assert len(first.column("transaction_id").chunk(0).dictionary) == len(set(first.column("transaction_id").to_pylist()))
    assert set(first.column("customer_id").chunk(0).dictionary.to_pylist()) <= set(ids[:60])
    pd.testing.assert_frame_equal(as_frames(parts[0])["transactions"],
                                  whole[whole["customer_id"].isin(ids[:60])].reset_index(drop=True))


def test_the_purchase_log_is_arrow_codes_for_local_chunks_and_pandas_for_the_spark_set_up(tables, tmp_path):
    """taxonomy_tables: the local engine cuts chunks from the log as Arrow dictionary codes; the Spark
    engine's set-up computes from its tables, so it gets pandas (same rows either way); the small tables
    are read one by one."""
    import pyarrow as pa

    from pipelines.io import write_validated
    from pipelines.score.command import taxonomy_tables

    folder = write_validated(tables, tmp_path / "validated")
    have = {n: tables[n] for n in ("customers", "offers", "offer_events")}
    local, spark = taxonomy_tables(folder, have), taxonomy_tables(folder, have, arrow=False)
    assert isinstance(local["transactions"], pa.Table) and isinstance(spark["transactions"], pd.DataFrame)
    assert local["transactions"].num_rows == len(spark["transactions"]) == len(tables["transactions"])
    assert "customers" not in local  # given already: not read again
