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
