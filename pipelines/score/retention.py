"""`rewards score` without offers: a retention list (every customer, churn risk, expected value, reasons, holdout).

Written when the validated data holds no offers (a purchase log alone trains churn only); offers without
an offer-response model are ranked by the cold-start prior instead (``models.policy.cold_start``). One row per customer who signed up before ``as_of``; a customer of the
customers table who did not (signed up at or after ``as_of``) is in the exclusions file with that
reason, so listed + excluded = the customers table, and the summary says so.

``expected_value`` is the value at risk: churn risk x the customer's gross margin over the 90 days
before ``as_of`` (``spend_90d`` x the program's ``economics.gross_margin_rate``), in the program's
currency. Reasons are the customer's own recency and rhythm in words.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from models.policy.holdout import holdout_salt, is_holdout

EXCLUDED_NOT_SIGNED_UP = "signed_up_on_or_after_as_of"
LIST_COLUMNS = ("customer_id", "churn_risk", "expected_value", "reasons", "holdout", "marketing_consent")


class RetentionCountError(RuntimeError):
    """Listed + excluded customers do not add up to the customers table (a bug, not bad data)."""


def retention_reasons(profiles: pd.DataFrame) -> list[list[str]]:
    """Plain-word reasons per profile row: how long since the last visit against the customer's usual gap."""
    def col(name):
        return profiles[name].to_numpy(dtype=float) if name in profiles.columns else np.full(len(profiles), np.nan)

    days, gap, visits30, visits90 = (col(c) for c in ("days_since_last_visit", "gap_days_mean_all", "visits_30d", "visits_90d"))
    out = []
    for d, g, v30, v90 in zip(days, gap, visits30, visits90, strict=True):
        reasons = []
        if np.isfinite(d) and np.isfinite(g) and g > 0:
            reasons.append(f"last visit {d:.0f} days ago, usually every {g:.0f} days")
        elif np.isfinite(d):
            reasons.append(f"last visit {d:.0f} days ago, no repeat visit yet")
        if np.isfinite(v30) and np.isfinite(v90) and v90 > 0 and v30 < v90 / 3:
            reasons.append(f"{v30:.0f} visits in the last 30 days against {v90:.0f} in the last 90")
        out.append(reasons)
    return out


def retention_rows(profiles: pd.DataFrame, churn_risk: np.ndarray, customers: pd.DataFrame, *, campaign: str,
                   holdout_fraction: float, margin_rate: float) -> pd.DataFrame:
    """The retention list's rows (LIST_COLUMNS), riskiest value first. Pure: frames in, frame out."""
    spend = profiles["spend_90d"].to_numpy(dtype=float) if "spend_90d" in profiles.columns else np.zeros(len(profiles))
    ids = profiles["customer_id"].astype(str).to_numpy(dtype=object)
    consent = customers.set_index(customers["customer_id"].astype(str))["marketing_consent"]
    rows = pd.DataFrame({
        "customer_id": ids,
        "churn_risk": np.asarray(churn_risk, dtype=float),
        "expected_value": np.round(np.asarray(churn_risk, dtype=float) * np.nan_to_num(spend) * margin_rate, 4),
        "reasons": retention_reasons(profiles),
        "holdout": is_holdout(ids, holdout_fraction, holdout_salt(campaign)),
        "marketing_consent": consent.reindex(ids).fillna(False).astype(bool).to_numpy(),
    })
    return rows.sort_values(["expected_value", "customer_id"], ascending=[False, True], kind="stable").reset_index(drop=True)


def run_retention(request, tables: dict, churn: tuple, why: str, program_digest: str) -> dict:
    """Build profiles at ``request.as_of``, score churn and write list, exclusions and summary atomically."""
    import time

    from features import build_profiles
    from pipelines.io import atomic_path, read_validated_program, write_frame
    from pipelines.score.writer import CSV_LIST_SEPARATOR, output_paths

    started = time.perf_counter()
    churn_model, churn_version = churn
    customers = tables["customers"]
    program, _ = read_validated_program(request.data) if request.data is not None else (None, None)
    profiles = build_profiles(tables, request.as_of, program=program)  # the catalogue of the data's program
    risk = churn_model.predict_proba(profiles)[:, 1] if len(profiles) else np.zeros(0)
    margin_rate = program.economics.gross_margin_rate if program is not None else 1.0
    rows = retention_rows(profiles, risk, customers, campaign=request.campaign, holdout_fraction=request.holdout,
                          margin_rate=margin_rate)
    listed = set(rows["customer_id"])
    all_ids = customers["customer_id"].astype(str)
    excluded = pd.DataFrame({"customer_id": all_ids[~all_ids.isin(listed)].to_numpy(dtype=object)})
    excluded["reason"] = EXCLUDED_NOT_SIGNED_UP
    if len(rows) + len(excluded) != len(customers):
        raise RetentionCountError(f"{len(rows)} listed + {len(excluded)} excluded != {len(customers)} customers")
    paths = output_paths(request.out)
    written = rows.copy()
    if request.out.suffix == ".csv":
        written["reasons"] = [CSV_LIST_SEPARATOR.join(r) for r in written["reasons"]]
    write_frame(written, paths["list"])
    write_frame(excluded, paths["exclusions"])
    summary = {
        "kind": "retention",
        "why_no_offers": why,
        "campaign": request.campaign,
        "as_of": str(request.as_of.date()),
        "holdout_fraction": request.holdout,
        "program_digest": program_digest,
        "customers_in_table": int(len(customers)),
        "customers_listed": int(len(rows)),
        "customers_held_out": int(rows["holdout"].sum()),
        "customers_excluded": int(len(excluded)),
        "excluded_by_reason": {EXCLUDED_NOT_SIGNED_UP: int(len(excluded))} if len(excluded) else {},
        "expected_value": round(float(rows["expected_value"].sum()), 2),
        "expected_value_means": "churn risk x gross margin over the last 90 days (spend_90d x gross_margin_rate)",
        "model_versions": {"churn": str(churn_version)},
        "outputs": {k: str(v) for k, v in paths.items()},
        "seconds": round(time.perf_counter() - started, 2),
    }
    with atomic_path(paths["summary"]) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
