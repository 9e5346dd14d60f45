"""The Spark plumbing on real Spark local[2]: pandas functions in, the same frames out."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from data_contracts.schema import empty_frame

pytestmark = pytest.mark.integration
pyspark = pytest.importorskip("pyspark")


@pytest.fixture(scope="module")
def spark():
    from pipelines.spark_engine import spark_session

    with spark_session("local[2]", app_name="rewards-tests", shuffle_partitions=2, driver_memory="1g") as session:
        yield session


def _customers() -> pd.DataFrame:
    frame = empty_frame("customers")
    rows = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "signup_date": pd.to_datetime(["2025-01-01 00:00:00", "2025-02-01 08:30:00", "2025-03-01 00:00:00"]),
            "tier": ["gold", "bronze", "silver"],
            "points_balance": [10, 0, 5],
            "region": ["north", "south", "east"],
            "birth_year": pd.array([1980, None, 1999], dtype="Int64"),
            "marketing_consent": [True, False, True],
        }
    )
    return pd.concat([frame, rows]).astype(frame.dtypes.to_dict()).reset_index(drop=True)


def _transactions() -> pd.DataFrame:
    frame = empty_frame("transactions")
    rows = pd.DataFrame(
        {
            "transaction_id": ["T1", "T2", "T3", "T4"],
            "customer_id": ["C1", "C1", "C3", "C2"],
            "ts": pd.to_datetime(["2026-01-01 07:10:00", "2026-01-02 12:00:00", "2026-01-03 09:00:00", "2026-01-04 18:00:00"]),
            "store_id": ["S1", "S2", "S1", "S3"],
            "channel": ["store", "app", "web", "store"],
            "product_id": ["P1", "P2", "P3", "P1"],
            "category": ["coffee", "bakery", "tea", "coffee"],
            "quantity": [1, 2, 1, 1],
            "amount": [3.5, 4.0, -2.0, 3.5],
            "is_refund": [False, False, True, False],
        }
    )
    return pd.concat([frame, rows]).astype(frame.dtypes.to_dict()).reset_index(drop=True)


def test_packed_tables_come_back_per_bucket_with_schema_dtypes(spark, tmp_path):
    from pipelines.spark_engine import (
        apply_in_pandas, pack_tables, read_tables, unpack_tables, with_bucket,
    )

    customers, transactions = _customers(), _transactions()
    customers.to_parquet(tmp_path / "customers.parquet", index=False)
    transactions.to_parquet(tmp_path / "transactions.parquet", index=False)
    frames = read_tables(spark, tmp_path, ["customers", "transactions"])
    packed = with_bucket(pack_tables(frames), "customer_id", 2)

    def per_bucket(group: pd.DataFrame) -> pd.DataFrame:
        tables = unpack_tables(group, ["customers", "transactions"])
        c, t = tables["customers"], tables["transactions"]
        # Dtypes are the validated ones, so pandas code written for validated tables works unchanged.
        assert str(c["birth_year"].dtype) == "Int64" and str(t["ts"].dtype) == "datetime64[ns]"
        # Rows come back in their file order whatever the shuffle did (float sums depend on it).
        assert t["transaction_id"].tolist() == sorted(t["transaction_id"])
        spend = t.groupby("customer_id")["amount"].sum()
        return pd.DataFrame(
            {
                "customer_id": c["customer_id"].astype(str),
                "spend": c["customer_id"].map(spend).fillna(0.0).astype("float64"),
                "birth_year": c["birth_year"].astype("float64"),
                "signup_date": c["signup_date"],
            }
        )

    schema = pa.schema([("customer_id", pa.string()), ("spend", pa.float64()), ("birth_year", pa.float64()),
                        ("signup_date", pa.timestamp("us"))])
    out = apply_in_pandas(packed, "_bucket", per_bucket, schema).toPandas().sort_values("customer_id")
    assert out["customer_id"].tolist() == ["C1", "C2", "C3"]
    assert out["spend"].tolist() == [7.5, 3.5, -2.0]
    assert out["birth_year"].isna().tolist() == [False, True, False]
    # Naive timestamps survive the JVM without a time-zone shift.
    assert pd.Timestamp(out["signup_date"].iloc[1]) == pd.Timestamp("2025-02-01 08:30:00")


def test_map_in_pandas_restores_dtypes_and_rejects_undeclared_columns(spark):
    from pipelines.spark_engine import SparkEngineError, arrow_schema_of, map_in_pandas, pandas_dtypes_of

    frame = pd.DataFrame(
        {"customer_id": ["A", "B"], "n": pd.array([1, None], dtype="Int64"), "tags": [["x"], []]}
    )
    df = spark.createDataFrame(pa.Table.from_pandas(frame, schema=arrow_schema_of(frame)).to_pandas())
    seen = []

    def double(batch: pd.DataFrame) -> pd.DataFrame:
        seen.append(dict(batch.dtypes.astype(str)))
        return batch.assign(n=batch["n"] * 2, tags=[t + ["y"] for t in batch["tags"]])

    out_schema = arrow_schema_of(frame)
    out = map_in_pandas(df, double, out_schema, pandas_dtypes_of(frame)).toPandas().sort_values("customer_id")
    assert out["n"].iloc[0] == 2 and pd.isna(out["n"].iloc[1])
    assert [list(t) for t in out["tags"]] == [["x", "y"], ["y"]]

    def extra(batch: pd.DataFrame) -> pd.DataFrame:
        return batch.assign(surprise=1)

    with pytest.raises(Exception, match="missing \\[\\], unexpected \\['surprise'\\]"):
        map_in_pandas(df, extra, out_schema, pandas_dtypes_of(frame), stage="scoring").collect()
    assert SparkEngineError.__name__ == "SparkEngineError"


# --------------------------------------------------------------------------------------------
# The Spark engine of `rewards score` equals the in-process engine, row for row
# --------------------------------------------------------------------------------------------

N_SPARK_CUSTOMERS = 400


@pytest.fixture(scope="module")
def small_campaign(sample, tmp_path_factory):
    """400 customers of the sample as validated tables, and real (small) LightGBM models fitted on them."""
    import numpy as np

    from models.churn import ChurnModel
    from models.offer_response import OfferResponseModel
    from models.training_sets import churn_snapshot_dates, churn_training_set, offer_response_training_set
    from pipelines.io import write_frame

    ids = np.sort(sample.tables["customers"]["customer_id"].to_numpy(dtype=object))[:N_SPARK_CUSTOMERS]
    tables = {
        name: frame[frame["customer_id"].isin(ids)].reset_index(drop=True) if "customer_id" in frame else frame
        for name, frame in sample.tables.items()
    }
    root = tmp_path_factory.mktemp("spark-campaign")
    for name, frame in tables.items():
        write_frame(frame, root / "validated" / f"{name}.parquet")
    X, y, _ = churn_training_set(tables, churn_snapshot_dates(tables, n_snapshots=2))
    churn = ChurnModel(n_estimators=40, min_child_samples=10).fit(X, y)
    Xo, yo, _ = offer_response_training_set(tables, snapshot_every_days=14)
    offer = OfferResponseModel(n_estimators=40, min_child_samples=10).fit(Xo, yo)
    return {"root": root, "tables": tables, "models": {"offer": (offer, "5"), "churn": (churn, "4")}}


def _request(small_campaign, engine: str, name: str):
    from pipelines.config import SAMPLE_END_DATE
    from pipelines.score import ScoreRequest

    return ScoreRequest(
        as_of=SAMPLE_END_DATE, campaign="spark-check", out=small_campaign["root"] / name, k=3, holdout=0.1,
        channel="app", engine=engine, data=small_campaign["root"] / "validated", chunk_size=150, progress=False,
    )


def test_spark_engine_writes_the_same_list_row_for_row_as_in_process(spark, small_campaign):
    from pipelines.score import output_paths, run_score

    local = _request(small_campaign, "local", "local.parquet")
    on_spark = _request(small_campaign, "spark", "spark.parquet")
    local_summary = run_score(local, models=small_campaign["models"], tables=small_campaign["tables"])
    spark_summary = run_score(on_spark, models=small_campaign["models"], tables=small_campaign["tables"], spark=spark)

    for kind in ("list", "exclusions"):
        a = pd.read_parquet(output_paths(local.out)[kind])
        b = pd.read_parquet(output_paths(on_spark.out)[kind])
        assert len(a) > 0
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    listed = pd.read_parquet(on_spark.out)
    assert listed["customer_id"].is_monotonic_increasing and listed["offer_id"].notna().sum() > N_SPARK_CUSTOMERS
    engine_only = {"engine", "seconds", "spark_master", "spark_stage_seconds", "outputs", "workers", "pass_seconds"}
    same = {k: v for k, v in local_summary.items() if k not in engine_only}
    assert same == {k: v for k, v in spark_summary.items() if k not in engine_only}
    assert spark_summary["customers_considered"] == N_SPARK_CUSTOMERS
    assert spark_summary["engine"] == "spark" and set(spark_summary["spark_stage_seconds"]) == {"profiles_s", "score_s"}
    # Spark's scratch Parquet is cleaned up: only the three outputs of each engine remain.
    assert sorted(p.name for p in small_campaign["root"].iterdir() if p.is_file()) == sorted(
        [p.name for p in output_paths(local.out).values()] + [p.name for p in output_paths(on_spark.out).values()]
    )
