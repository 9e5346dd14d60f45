"""Build everything the offer API serves from: champion models, the profile snapshot, offers and history.

``load_state`` builds a new, complete ``ServingState`` or raises ``ServingLoadError``; the service
swaps one reference to it, so a reload is atomic and a failed one changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from models.policy import (
    ContactHistory,
    CustomerBook,
    FrameScorer,
    OfferCatalog,
    PolicyConfig,
    PolicyError,
    ScorerMismatchError,
    customer_book,
    index_history,
    precompute_scorer,
    prepare_offers,
)
from pipelines import config
from pipelines.compiled import compiled_predictor

logger = logging.getLogger("rewards.serving")

PROFILES_ENV = "REWARDS_PROFILES_PATH"
VALIDATED_ENV = "REWARDS_VALIDATED_DIR"
POLICY_ENV = "REWARDS_POLICY_JSON"
MAX_SCORER_MB_ENV = "REWARDS_MAX_SCORER_MB"


class ServingLoadError(RuntimeError):
    """The models, profiles or tables cannot be loaded into a consistent serving state."""


@dataclass(frozen=True)
class Settings:
    """Where the service reads from; every field has an environment override."""

    profiles_path: Path
    validated_dir: Path
    tracking_uri: str
    decision_log: Path
    policy: PolicyConfig
    max_scorer_mb: float = 2048.0

    @classmethod
    def from_env(cls) -> Settings:
        raw = os.environ.get(POLICY_ENV, "").strip()
        try:
            overrides = json.loads(raw) if raw else {}
            policy = PolicyConfig(**overrides)
        except (json.JSONDecodeError, TypeError, PolicyError) as err:
            raise ServingLoadError(f"${POLICY_ENV} must be a JSON object of PolicyConfig fields, got {raw!r}: {err}") from err
        return cls(
            profiles_path=Path(os.environ.get(PROFILES_ENV, config.profiles_dir() / "profiles.parquet")),
            validated_dir=Path(os.environ.get(VALIDATED_ENV, config.validated_dir())),
            tracking_uri=config.tracking_uri(),
            decision_log=config.decision_log_path(),
            policy=policy,
            max_scorer_mb=float(os.environ.get(MAX_SCORER_MB_ENV, 2048)),
        )


@dataclass(frozen=True)
class ServingState:
    """One consistent generation of everything a decision needs."""

    catalog: OfferCatalog
    history: ContactHistory
    book: CustomerBook
    scorer: object  # PrecomputedScorer or FrameScorer
    scorer_kind: str
    churn_version: str
    offer_version: str
    profiles_as_of: str
    profiles_path: str
    policy: PolicyConfig
    loaded_at: str
    load_seconds: float
    model_versions: dict[str, str] = field(default_factory=dict)

    @property
    def needs_profiles(self) -> bool:
        return self.scorer_kind == "frame"


def _fail(what: str, err: Exception) -> ServingLoadError:
    return ServingLoadError(f"{what}: {type(err).__name__}: {err}")


def load_profiles(path: Path) -> tuple[pd.DataFrame, dict]:
    """The profile snapshot and its manifest, checked against each other."""
    from features.manifest import check_manifest
    from pipelines.build_features import read_manifest

    if not Path(path).exists():
        raise ServingLoadError(f"no profile snapshot at '{path}'; run `rewards features` (or set ${PROFILES_ENV})")
    try:
        manifest = read_manifest(path)
        profiles = pd.read_parquet(path)
        check_manifest(profiles.columns, manifest)
    except Exception as err:  # noqa: BLE001 - any failure here means "cannot serve this snapshot"
        raise _fail(f"profile snapshot '{path}' is not usable", err) from err
    return profiles, manifest


def check_model_features(manifest: dict, churn_model, offer_model) -> None:
    """The features the models consume must all be in the snapshot's manifest."""
    from features.manifest import manifest_feature_names
    from models.offer_response import offer_feature_columns, profile_columns_used

    have = set(manifest_feature_names(manifest))
    problems = []
    buildable = set(offer_feature_columns())
    stale = [f for f in getattr(offer_model, "feature_names_in_", []) if f not in buildable]
    if stale:
        problems.append(
            f"offer model was fitted on features that offer_features no longer builds: {stale[:10]} (retrain it)"
        )
    churn_missing = [f for f in getattr(churn_model, "feature_names_in_", []) if f not in have]
    if churn_missing:
        problems.append(f"churn model expects features missing from the profiles: {churn_missing[:10]}")
    offer_missing = [f for f in profile_columns_used() if f not in have]
    if offer_missing:
        problems.append(f"offer model expects profile features missing from the profiles: {offer_missing[:10]}")
    if problems:
        raise ServingLoadError("feature manifest does not match the models: " + "; ".join(problems))


def load_state(settings: Settings | None = None) -> ServingState:
    """Load models (champions by alias), profiles, offers and history into a new ServingState."""
    from features import habit_tags
    from features.manifest import manifest_feature_names
    from pipelines.config import CHURN_MODEL_NAME, OFFER_MODEL_NAME
    from pipelines.io import read_validated
    from pipelines.registry import load_champion

    settings = settings or Settings.from_env()
    started = time.perf_counter()
    try:
        churn_model, churn_version = load_champion(CHURN_MODEL_NAME, settings.tracking_uri)
        offer_model, offer_version = load_champion(OFFER_MODEL_NAME, settings.tracking_uri)
    except Exception as err:  # noqa: BLE001
        raise _fail(f"cannot load the champion models from {settings.tracking_uri}", err) from err

    profiles, manifest = load_profiles(settings.profiles_path)
    check_model_features(manifest, churn_model, offer_model)
    try:
        tables = read_validated(settings.validated_dir)
    except Exception as err:  # noqa: BLE001
        raise _fail(f"cannot read the validated tables in '{settings.validated_dir}'", err) from err

    features = manifest_feature_names(manifest)
    feature_frame = profiles[["customer_id", *features]]
    try:
        churn = np.asarray(churn_model.predict_proba(feature_frame.drop(columns=["customer_id"])))[:, 1]
        tags = profiles["habit_tags"].tolist() if "habit_tags" in profiles.columns else habit_tags(feature_frame).tolist()
        book = customer_book(feature_frame, tables["customers"], churn_risk=churn, habit_tags=tags)
        catalog = prepare_offers(tables["offers"])
        history = index_history(tables["offer_events"])
    except Exception as err:  # noqa: BLE001
        raise _fail("cannot index customers, offers and history", err) from err

    size_mb = len(feature_frame) * len(catalog) * len(getattr(offer_model, "feature_names_in_", [])) * 8 / 2**20
    scorer, kind = None, "frame"
    if size_mb <= settings.max_scorer_mb:
        try:
            predict = compiled_predictor(offer_model)  # compiled once per model version and machine (cached)
            scorer = precompute_scorer(offer_model, feature_frame, catalog, predict=predict)
            kind = "precomputed, compiled trees" if predict is not None and predict.compiled else "precomputed"
        except (ScorerMismatchError, AttributeError) as err:
            logger.warning("precomputed offer scorer unavailable (%s); scoring through offer_features per request", err)
        except Exception as err:  # noqa: BLE001 - the model cannot score these profiles at all
            raise _fail("the offer model cannot score the profile snapshot", err) from err
    else:
        logger.warning("precomputed offer scorer would need %.0f MB > %s; scoring per request", size_mb, MAX_SCORER_MB_ENV)
    if scorer is None:
        scorer = FrameScorer(offer_model)

    return ServingState(
        catalog=catalog,
        history=history,
        book=book,
        scorer=scorer,
        scorer_kind=kind,
        churn_version=churn_version,
        offer_version=offer_version,
        profiles_as_of=str(manifest.get("as_of", "")),
        profiles_path=str(settings.profiles_path),
        policy=settings.policy,
        loaded_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        load_seconds=round(time.perf_counter() - started, 2),
        model_versions={OFFER_MODEL_NAME: offer_version, CHURN_MODEL_NAME: churn_version},
    )
