"""The offer API: a BentoML service that loads the champion models and profiles, then asks the policy.

Run with ``rewards serve`` (or ``bentoml serve serving.service:OfferService``). Environment:
REWARDS_DATA_DIR / MLFLOW_TRACKING_URI / REWARDS_PROFILES_PATH / REWARDS_VALIDATED_DIR (where to load
from), REWARDS_API_KEYS (comma-separated; X-API-Key), REWARDS_DECISION_LOG, REWARDS_POLICY_JSON,
REWARDS_SERVE_WORKERS. /healthz and /readyz are open; everything else needs a key when keys are set.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import threading
import time
import uuid
from http import HTTPStatus

import bentoml
from bentoml.exceptions import BentoMLException, InvalidArgument, NotFound, ServiceUnavailable

from models.policy import Context, PolicyError, UnknownOfferError
from serving.auth import ApiKeyMiddleware
from serving.decision_log import DecisionLog
from serving.loading import ServingLoadError, ServingState, Settings, load_state
from serving.schemas import (
    BatchResponse,
    ChurnRequest,
    ChurnResponse,
    ChurnRisk,
    Decision,
    EmptyRequest,
    RecommendBatchRequest,
    RecommendRequest,
    RecommendResponse,
    ReloadResponse,
    RequestContext,
    StatusResponse,
)

logger = logging.getLogger("rewards.serving")


class ReloadFailed(BentoMLException):
    """A reload could not build a new serving state; the previous one keeps serving."""

    error_code = HTTPStatus.CONFLICT


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


WORKERS = int(os.environ.get("REWARDS_SERVE_WORKERS", "1"))
# BentoML's per-request access log line and Prometheus metrics cost ~15 % of a /recommend request's
# CPU at 200 req/s on 2 cores; every decision is in the decision log anyway. REWARDS_ACCESS_LOG=1 turns both on.
ACCESS_LOG = os.environ.get("REWARDS_ACCESS_LOG", "").strip().lower() in {"1", "true", "yes"}


def _settle_heap() -> None:
    """Collect, then freeze what survives (models, profiles, indexes) out of the cyclic GC.

    The serving state is millions of long-lived objects; without this, every full collection walks
    them all and stalls the event loop for 100+ ms, which is the p99 of /recommend at 200 req/s.
    Unfreeze first so a previous generation's state, now unreferenced, can still be collected.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _generation_path():
    """Written by a worker after a successful reload; the other workers follow it (workers > 1)."""
    from pipelines import config

    return config.data_dir() / "serving" / "reload.generation"


def _read_generation() -> str:
    try:
        return _generation_path().read_text().strip()
    except OSError:
        return ""


@bentoml.service(
    name="offer-api",
    workers=WORKERS,
    traffic={"timeout": 30, "max_concurrency": 256},
    resources={"cpu": "1"},
    logging={"access": {"enabled": ACCESS_LOG}},
    metrics={"enabled": ACCESS_LOG},
)
class OfferService:
    """Next-best offers, churn risk, health and hot reload. Business rules live in models.policy."""

    def __init__(self) -> None:
        self._settings_error: str | None = None
        self._reload_lock = threading.Lock()
        self._state: ServingState | None = None
        self.last_reload_error: str | None = None
        self._generation = _read_generation()
        self._next_generation_check = 0.0
        try:
            self.settings = Settings.from_env()
        except ServingLoadError as err:
            self.settings = None
            self._settings_error = str(err)
            logger.error("offer API not ready: %s", err)
            return
        self.log = DecisionLog(self.settings.decision_log)
        try:
            self._state = load_state(self.settings)
            _settle_heap()
            logger.info(
                "offer API ready: models %s, profiles as of %s, %d customers, %d offers, %s scorer, loaded in %.1f s",
                self._state.model_versions, self._state.profiles_as_of, len(self._state.book.positions),
                len(self._state.catalog), self._state.scorer_kind, self._state.load_seconds,
            )
        except Exception as err:  # noqa: BLE001 - ServingLoadError, or a bug: either way not ready
            # Stay up but not ready: /readyz says 503 until a successful POST /admin/reload.
            self.last_reload_error = str(err)
            logger.exception("offer API not ready: %s", err)

    def __is_ready__(self) -> bool:
        return self._state is not None

    # ---- helpers ---------------------------------------------------------------------------

    def _follow_reloads(self) -> None:
        """With several workers, a reload lands in one: the others see its generation file and reload too."""
        now = time.monotonic()
        if now < self._next_generation_check:
            return
        self._next_generation_check = now + 1.0
        generation = _read_generation()
        if generation and generation != self._generation and not self._reload_lock.locked():
            threading.Thread(target=self._reload_in_background, args=(generation,), daemon=True).start()

    def _reload_in_background(self, generation: str) -> None:
        if not self._reload_lock.acquire(blocking=False):
            return
        try:
            self._state = load_state(Settings.from_env())
            _settle_heap()
            self.last_reload_error = None
            logger.info("followed reload %s: models %s, profiles as of %s", generation,
                        self._state.model_versions, self._state.profiles_as_of)
        except Exception as err:  # noqa: BLE001 - keep serving what we have
            self.last_reload_error = f"{_now()}: following reload {generation}: {err}"
            logger.error("could not follow reload %s: %s", generation, err)
        finally:
            self._generation = generation
            self._reload_lock.release()

    def _serving(self) -> ServingState:
        if WORKERS > 1:
            self._follow_reloads()
        state = self._state  # one read: a concurrent reload cannot mix two generations
        if state is None:
            raise ServiceUnavailable(f"models and profiles are not loaded: {self.last_reload_error or self._settings_error}")
        return state

    def _decide(self, state: ServingState, customer_ids: list[str], k: int, context: RequestContext,
                offer_ids: list[str] | None):
        try:
            ctx = Context(context.timestamp, context.channel, context.store_id)
            return state.decide(customer_ids, ctx, k, offer_ids)
        except UnknownOfferError as err:
            raise NotFound(str(err)) from err
        except PolicyError as err:
            raise InvalidArgument(str(err)) from err

    def _log(self, request_id: str, endpoint: str, state: ServingState, context: RequestContext, records: list[dict]) -> None:
        when = _now()
        ctx = {"timestamp": context.timestamp.isoformat(), "channel": context.channel, "store_id": context.store_id}
        self.log.append(
            [
                {
                    "request_id": request_id,
                    "endpoint": endpoint,
                    "decided_at": when,
                    "customer_id": r["customer_id"],
                    "status": r["status"],
                    "cold_start": r["cold_start"],
                    "control_group": r["control_group"],
                    "churn_risk": r["churn_risk"],
                    "offers": [
                        {"offer_id": o["offer_id"], "rank": o["rank"], "score": o["score"], "p_redeem": o["p_redeem"]}
                        for o in r["offers"]
                    ],
                    "context": ctx,
                    "model_versions": state.model_versions,
                    "profiles_as_of": state.profiles_as_of,
                }
                for r in records
            ]
        )

    @staticmethod
    def _request_id(ctx: bentoml.Context) -> str:
        given = ctx.request.headers.get("x-request-id") if ctx is not None and ctx.request is not None else None
        return given[:64] if given else uuid.uuid4().hex

    # ---- API -------------------------------------------------------------------------------

    @bentoml.api(route="/recommend", input_spec=RecommendRequest, output_spec=RecommendResponse)
    async def recommend(self, customer_id: str, context: RequestContext, k: int = 3, offer_ids: list[str] | None = None,
                  ctx: bentoml.Context = None) -> RecommendResponse:
        """The top-k offers for one customer in a context, with reasons; logged in the decision log.

        ``async`` on purpose: one decision is ~1 ms of CPU, less than the hop to BentoML's thread pool
        and back, so it runs on the event loop (a batch of 1,000 stays on the thread pool)."""
        state = self._serving()
        request_id = self._request_id(ctx)
        record = self._decide(state, [customer_id], k, context, offer_ids).records()[0]
        self._log(request_id, "recommend", state, context, [record])
        return RecommendResponse(
            request_id=request_id, model_versions=state.model_versions, profiles_as_of=state.profiles_as_of, **record
        )

    @bentoml.api(route="/recommend_batch", input_spec=RecommendBatchRequest, output_spec=BatchResponse)
    def recommend_batch(self, customer_ids: list[str], context: RequestContext, k: int = 3,
                        offer_ids: list[str] | None = None, ctx: bentoml.Context = None) -> BatchResponse:
        """The top-k offers for up to 1,000 customers in the same context."""
        state = self._serving()
        request_id = self._request_id(ctx)
        records = self._decide(state, customer_ids, k, context, offer_ids).records()
        self._log(request_id, "recommend_batch", state, context, records)
        return BatchResponse(
            request_id=request_id,
            results=[Decision(**r) for r in records],
            model_versions=state.model_versions,
            profiles_as_of=state.profiles_as_of,
        )

    @bentoml.api(route="/churn_risk", input_spec=ChurnRequest, output_spec=ChurnResponse)
    def churn_risk(self, customer_ids: list[str]) -> ChurnResponse:
        """Predicted churn risk of up to 1,000 customers (null for customers without a profile)."""
        state = self._serving()
        batch = state.book.batch(customer_ids)
        results = [
            ChurnRisk(customer_id=c, known=bool(known), churn_risk=float(r) if known else None)
            for c, known, r in zip(batch.customer_id, batch.known, batch.churn_risk, strict=True)
        ]
        return ChurnResponse(results=results, model_version=state.churn_version, profiles_as_of=state.profiles_as_of)

    @bentoml.api(route="/status", input_spec=EmptyRequest, output_spec=StatusResponse)
    def status(self) -> StatusResponse:
        """What is serving: model versions, profile snapshot, sizes, and the last reload error."""
        if WORKERS > 1:
            self._follow_reloads()
        state = self._state
        return StatusResponse(
            ready=state is not None,
            model_versions=state.model_versions if state else {},
            profiles_as_of=state.profiles_as_of if state else None,
            customers=len(state.book.positions) if state else 0,
            offers=len(state.catalog) if state else 0,
            scorer=state.scorer_kind if state else "none",
            loaded_at=state.loaded_at if state else None,
            last_reload_error=self.last_reload_error or self._settings_error,
        )

    @bentoml.api(route="/admin/reload", input_spec=EmptyRequest, output_spec=ReloadResponse)
    def reload(self) -> ReloadResponse:
        """Build models and profiles anew, then swap them in at once; on failure keep serving the old ones (409).

        With several workers the others follow within a second plus their own load time."""
        if not self._reload_lock.acquire(blocking=False):
            raise ReloadFailed("a reload is already running; try again when it has finished")
        try:
            previous = self._state
            started = time.perf_counter()
            try:
                settings = Settings.from_env()
                new_state = load_state(settings)
            except Exception as err:  # noqa: BLE001 - whatever failed, the previous state keeps serving
                self.last_reload_error = f"{_now()}: {err}"
                still = (
                    f"still serving models {previous.model_versions} with profiles as of {previous.profiles_as_of}"
                    if previous else "nothing is serving"
                )
                logger.error("reload failed: %s (%s)", err, still)
                raise ReloadFailed(f"reload failed, {still}: {err}") from err
            self.settings = settings
            self._state = new_state  # the swap: one reference assignment
            prev_versions = previous.model_versions if previous else {}
            prev_as_of = previous.profiles_as_of if previous else ""
            previous = None  # drop the old generation before the heap is settled
            _settle_heap()
            self.last_reload_error = None
            if WORKERS > 1:
                from pipelines.io import atomic_path

                self._generation = uuid.uuid4().hex
                with atomic_path(_generation_path()) as tmp:
                    tmp.write_text(self._generation)
            logger.info("reloaded: models %s, profiles as of %s", new_state.model_versions, new_state.profiles_as_of)
            return ReloadResponse(
                status="reloaded",
                model_versions=new_state.model_versions,
                profiles_as_of=new_state.profiles_as_of,
                previous_model_versions=prev_versions,
                previous_profiles_as_of=prev_as_of,
                seconds=round(time.perf_counter() - started, 2),
            )
        finally:
            self._reload_lock.release()


OfferService.add_asgi_middleware(ApiKeyMiddleware)
