"""Build everything the offer API serves from: champion models, the profile snapshot, offers and history.

``load_state`` builds a new, complete ``ServingState`` or raises ``ServingLoadError``; the service
swaps one reference to it, so a reload is atomic and a failed one changes nothing. Decisions are set
up by ``models.policy.setup.decision_setup``, as for campaign lists; with ``$REWARDS_CAMPAIGN_JSON``
(the campaign a list is written for) the API holds out and withdraws for budget as that list does.
``$REWARDS_POLICY_JSON`` may set ``"objective": "uplift"`` (or ``"expected_value"``); without it the
objective is ``pipelines.train_uplift.default_objective`` (uplift once ``offer-uplift`` has a champion).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from models.policy import (
    Context,
    ContactHistory,
    CustomerBook,
    Decisions,
    OfferCatalog,
    PolicyConfig,
    PolicyError,
)
from models.policy.setup import Campaign, DecisionSetup, decision_setup
from pipelines import config
from pipelines.compiled import compiled_predictor
from serving.inputs import validated_key

logger = logging.getLogger("rewards.serving")

PROFILES_ENV = "REWARDS_PROFILES_PATH"
VALIDATED_ENV = "REWARDS_VALIDATED_DIR"
POLICY_ENV = "REWARDS_POLICY_JSON"
CAMPAIGN_ENV = "REWARDS_CAMPAIGN_JSON"
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
    campaign: Campaign | None = None  # decide as this campaign's list does (holdout and budget)
    objective: str | None = None  # $REWARDS_POLICY_JSON's "objective"; None: default_objective() at load

    @classmethod
    def from_env(cls) -> Settings:
        raw = os.environ.get(POLICY_ENV, "").strip()
        try:
            overrides = json.loads(raw) if raw else {}
            policy = PolicyConfig(**overrides)
        except (json.JSONDecodeError, TypeError, PolicyError) as err:
            raise ServingLoadError(f"${POLICY_ENV} must be a JSON object of PolicyConfig fields, got {raw!r}: {err}") from err
        campaign = campaign_from_env(os.environ.get(CAMPAIGN_ENV, ""))
        return cls(
            campaign=campaign,
            objective=overrides.get("objective"),
            profiles_path=Path(os.environ.get(PROFILES_ENV, config.profiles_dir() / "profiles.parquet")),
            validated_dir=Path(os.environ.get(VALIDATED_ENV, config.validated_dir())),
            tracking_uri=config.tracking_uri(),
            decision_log=config.decision_log_path(),
            policy=policy,
            max_scorer_mb=float(os.environ.get(MAX_SCORER_MB_ENV, 2048)),
        )


def campaign_from_env(raw: str) -> Campaign | None:
    """The campaign of ``$REWARDS_CAMPAIGN_JSON`` (name, send_at, channel, k, holdout, offers), or None."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        spec = json.loads(raw)
        if not isinstance(spec, dict):
            raise TypeError(f"expected a JSON object, got {type(spec).__name__}")
        unknown = sorted(set(spec) - {"name", "send_at", "channel", "k", "holdout", "offers"})
        if unknown:
            raise TypeError(f"unknown keys {unknown}")
        campaign = Campaign(
            name=spec["name"], send_at=spec["send_at"], channel=spec.get("channel", "email"), k=spec.get("k", 1),
            holdout_fraction=spec.get("holdout", 0.05), offer_ids=spec.get("offers"),
        )
        campaign.context  # noqa: B018 - checks the channel
        return campaign
    except (json.JSONDecodeError, TypeError, KeyError, ValueError) as err:
        raise ServingLoadError(
            f"${CAMPAIGN_ENV} must be a JSON object with name and send_at (and optionally channel, k, holdout, "
            f"offers), as given to `rewards score`; got {raw!r}: {err}"
        ) from err


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
    setup: DecisionSetup | None = None
    warmup: object | None = None  # serving.warmup.WarmUp once the state has been warmed up
    # The validated tables the set-up was built from (those it reads) and their folder's key
    # (serving.inputs.validated_key): a reload of a new snapshot over the same folder reuses them.
    tables: dict[str, pd.DataFrame] | None = field(default=None, repr=False)
    tables_key: str | None = None

    @property
    def objective(self) -> str:
        """What this generation ranks offers by (expected_value or uplift)."""
        return self.policy.objective

    @property
    def needs_profiles(self) -> bool:
        return self.setup.needs_profiles if self.setup is not None else self.scorer_kind == "frame"

    def decide(self, customer_ids: list[str], context: Context, k: int, offer_ids: list[str] | None = None) -> Decisions:
        """The decisions of this generation (the same ``DecisionSetup.decide`` the campaign lists call)."""
        return self.setup.decide(customer_ids, context, k, offer_ids=offer_ids)


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
    from models.offer_response import CONTEXT_COLUMNS, INTERACTION_COLUMNS, OFFER_ATTRIBUTE_COLUMNS, profile_columns_used
    from models.offer_taxonomy import taxonomy_columns

    have = set(manifest_feature_names(manifest))
    problems = []
    # the taxonomy columns are computed from the validated tables at load (models.offer_taxonomy)
    used = set(profile_columns_used(manifest_feature_names(manifest)))  # the snapshot's program's catalogue
    buildable = used | set(OFFER_ATTRIBUTE_COLUMNS) | set(CONTEXT_COLUMNS) | set(INTERACTION_COLUMNS) | set(taxonomy_columns())
    stale = [f for f in getattr(offer_model, "feature_names_in_", []) if f not in buildable]
    if stale:
        problems.append(
            f"offer model was fitted on features that offer_features no longer builds: {stale[:10]} (retrain it)"
        )
    churn_missing = [f for f in getattr(churn_model, "feature_names_in_", []) if f not in have]
    if churn_missing:
        problems.append(f"churn model expects features missing from the profiles: {churn_missing[:10]}")
    offer_missing = [f for f in getattr(offer_model, "feature_names_in_", sorted(used)) if f in used and f not in have]
    if offer_missing:
        problems.append(f"offer model expects profile features missing from the profiles: {offer_missing[:10]}")
    if problems:
        raise ServingLoadError("feature manifest does not match the models: " + "; ".join(problems))


def _reusable_models(previous: ServingState | None, tracking_uri: str):
    """(churn model, offer model, compiled predict) of ``previous`` when the champion aliases still point
    at the versions it serves (a reload of new profiles only), else None."""
    from serving.inputs import champion_versions

    if previous is None or previous.setup is None:
        return None
    from pipelines.config import CHURN_MODEL_NAME, OFFER_MODEL_NAME

    served = {k: previous.model_versions.get(k) for k in (OFFER_MODEL_NAME, CHURN_MODEL_NAME)}
    try:
        now = champion_versions(tracking_uri)
        if {k: now[k] for k in served} != served:
            return None
    except Exception:  # noqa: BLE001 - the registry cannot answer: load_champion below says why
        return None
    return previous.setup.churn_model, previous.setup.offer_model, getattr(previous.scorer, "predict", None)


def load_state(settings: Settings | None = None, previous: ServingState | None = None) -> ServingState:
    """Load models (champions by alias), profiles, offers and history into a new ServingState.

    With ``previous`` (the serving state) whose model versions are still the champions, its models and
    compiled trees are reused (a reload of new profiles does not load or compile the models again)."""
    from features.manifest import manifest_feature_names
    from pipelines.config import CHURN_MODEL_NAME, OFFER_MODEL_NAME
    from models.policy import Vocabulary
    from pipelines.io import read_validated, read_validated_program
    from pipelines.registry import load_champion
    from pipelines.train_uplift import UPLIFT_MODEL_NAME, UpliftObjectiveError, resolve_objective, uplift_for

    settings = settings or Settings.from_env()
    started = time.perf_counter()
    reused = _reusable_models(previous, settings.tracking_uri)
    if reused is not None:
        churn_model, offer_model, predict = reused
        churn_version, offer_version = previous.churn_version, previous.offer_version
        logger.info("reload keeps the champion models %s (versions unchanged): not loaded or compiled again",
                    previous.model_versions)
    else:
        predict = None
        try:
            churn_model, churn_version = load_champion(CHURN_MODEL_NAME, settings.tracking_uri)
            offer_model, offer_version = load_champion(OFFER_MODEL_NAME, settings.tracking_uri)
        except Exception as err:  # noqa: BLE001
            raise _fail(f"cannot load the champion models from {settings.tracking_uri}", err) from err
    try:
        objective = resolve_objective(settings.objective, settings.tracking_uri)
        uplift_model, uplift_version = uplift_for(objective, settings.tracking_uri)
    except UpliftObjectiveError as err:
        raise ServingLoadError(f"${POLICY_ENV}: {err}") from err
    except Exception as err:  # noqa: BLE001
        raise _fail(f"cannot load the champion uplift model from {settings.tracking_uri}", err) from err
    policy = replace(settings.policy, objective=objective)

    from pipelines.registry import ProgramMismatchError, check_same_program

    try:  # the models were trained on data of the program the validated data is of (program.toml there)
        digest, note = check_same_program({"churn": (churn_model, churn_version), "offer": (offer_model, offer_version)},
                                          settings.validated_dir, settings.tracking_uri)
    except ProgramMismatchError as err:
        raise ServingLoadError(f"cannot serve: {err}") from None
    if note:
        logger.warning("%s", note)
    profiles, manifest = load_profiles(settings.profiles_path)
    if manifest.get("program_digest", digest) != digest:
        raise ServingLoadError(
            f"cannot serve: profiles '{settings.profiles_path}' were built from data of program "
            f"{manifest['program_digest']}, but '{settings.validated_dir}' is of program {digest}; rebuild them "
            "with `rewards features` on the validated data"
        )
    check_model_features(manifest, churn_model, offer_model)
    tables_key = validated_key(Path(settings.validated_dir))
    reuse = (previous.setup if previous is not None and previous.tables is not None
             and previous.tables_key == tables_key
             and (not _reads_purchases(offer_model, uplift_model) or "transactions" in previous.tables) else None)
    if reuse is not None:  # the same validated folder: its tables, offers, history and taxonomy tables are kept
        tables = previous.tables
        logger.info("reload keeps the validated tables, offers and contact history (folder unchanged)")
    else:
        try:
            tables = read_validated(settings.validated_dir)
        except Exception as err:  # noqa: BLE001
            raise _fail(f"cannot read the validated tables in '{settings.validated_dir}'", err) from err

    try:
        if predict is None:
            predict = compiled_predictor(offer_model)  # compiled once per model version and machine (cached)
        setup = decision_setup(
            tables, churn_model, offer_model, policy=policy, campaign=settings.campaign, profiles=profiles,
            feature_names=manifest_feature_names(manifest), predict=predict, precompute_max_mb=settings.max_scorer_mb,
            uplift_model=uplift_model, as_of=manifest.get("as_of"), reuse=reuse,
            vocabulary=reuse.catalog.vocabulary if reuse is not None else Vocabulary.from_program(
                read_validated_program(settings.validated_dir)[0], tables["offers"]),
        )
    except Exception as err:  # noqa: BLE001 - any failure here means "cannot serve this snapshot"
        raise _fail("cannot set up decisions over the profiles, offers and history", err) from err
    if setup.scorer_note:
        logger.warning("%s; scoring through the %s scorer per request", setup.scorer_note, setup.scorer_kind)

    return ServingState(
        catalog=setup.catalog,
        history=setup.history,
        book=setup.book,
        scorer=setup.scorer,
        scorer_kind=setup.scorer_kind,
        churn_version=churn_version,
        offer_version=offer_version,
        profiles_as_of=str(manifest.get("as_of", "")),
        profiles_path=str(settings.profiles_path),
        policy=setup.config,
        loaded_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        load_seconds=round(time.perf_counter() - started, 2),
        model_versions={OFFER_MODEL_NAME: offer_version, CHURN_MODEL_NAME: churn_version,
                        **({UPLIFT_MODEL_NAME: uplift_version} if uplift_model is not None else {})},
        setup=setup,
        tables=tables if reuse is not None else _kept_tables(tables, offer_model, uplift_model),
        tables_key=tables_key,
    )


def _kept_tables(tables: dict[str, pd.DataFrame], offer_model, uplift_model) -> dict[str, pd.DataFrame]:
    """The tables a decision set-up reads (kept for the next reload): offers, offer events and customers,
    and the purchase log and catalogue when a model computes the taxonomy columns from them (the set-up
    holds those already)."""
    from models.offer_taxonomy import source_tables

    kept = {name: tables[name] for name in ("offers", "offer_events", "customers") if name in tables}
    if _reads_purchases(offer_model, uplift_model):
        kept.update(source_tables(tables))
    return kept


def _reads_purchases(offer_model, uplift_model) -> bool:
    """Whether a model computes the taxonomy columns from the purchase log (so the set-up needs the log)."""
    from models.offer_taxonomy import uses_taxonomy

    return uses_taxonomy(offer_model) or (uplift_model is not None and uses_taxonomy(uplift_model))
