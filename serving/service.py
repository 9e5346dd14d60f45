"""The offer API: a BentoML service that loads the champion models and profiles, then asks the policy.

Run with ``rewards serve`` (or ``bentoml serve serving.service:OfferService``). Environment:
REWARDS_DATA_DIR / MLFLOW_TRACKING_URI / REWARDS_PROFILES_PATH / REWARDS_VALIDATED_DIR (where to load
from), REWARDS_API_KEYS (comma-separated; X-API-Key), REWARDS_DECISION_LOG (+ _MAX_MB, _KEEP),
REWARDS_POLICY_JSON, REWARDS_SERVE_WORKERS, REWARDS_STORE_TIMEZONE, REWARDS_MAX_BODY_BYTES,
REWARDS_REQUEST_TIMEOUT_S, REWARDS_RELOAD_MIN_CUSTOMER_RATIO / _MIN_OFFER_RATIO / _TIMEOUT_S, REWARDS_LOAD_NICE
(the CPU priority of the thread that builds a reloaded state, 0-19, default 10), REWARDS_WARMUP_DECISIONS
(serving.warmup).
/healthz, /readyz and /docs.json are open; everything else needs a key when keys are set. /readyz says ready only
when every worker serves a warmed-up state (``OfferService.__is_ready__``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import os
import time
import uuid
from dataclasses import replace

import bentoml
from starlette.responses import Response

from models.policy import Context, PolicyError, UnknownOfferError
from models.policy.errors import UnknownChannelError
from serving.auth import ApiKeyMiddleware
from serving.decision_log import DecisionLog
from serving.errors import ApiError, log_client_error
from serving.generations import GenerationBoard, GenerationCoordinator, ReloadRefused, ReloadThresholds
from serving.guard import RequestGuard
from serving.inputs import inputs_fingerprint
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
    ReloadRequest,
    ReloadResponse,
    RequestContext,
    StatusResponse,
    WorkerStatus,
    store_timezone,
)
from serving.warmup import WarmUpConfigError, decisions_from_env, warm_up

logger = logging.getLogger("rewards.serving")
if not logger.handlers:  # BentoML configures only its own loggers: give ours the same one-line format
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] [%(name)s] %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    logger.addHandler(_handler)
    _level = os.environ.get("REWARDS_LOG_LEVEL", "INFO").strip().upper()
    logger.setLevel(_level if _level in logging.getLevelNamesMapping() else "INFO")
    logger.propagate = False


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


WORKERS = int(os.environ.get("REWARDS_SERVE_WORKERS", "1"))


def _server_timeout() -> float:
    """The per-request time budget is serving.guard's ($REWARDS_REQUEST_TIMEOUT_S, 503 past it); BentoML's
    own timeout only has to let a reload finish (it waits for every worker's load)."""
    try:
        return ReloadThresholds.from_env().timeout_s + 60
    except ValueError:  # reported by OfferService.__init__ (not ready)
        return 180.0


SERVER_TIMEOUT_S = _server_timeout()
# BentoML's per-request access log line and Prometheus metrics cost ~15 % of a /recommend request's
# CPU at 200 req/s on 2 cores; every decision is in the decision log anyway. REWARDS_ACCESS_LOG=1 turns both on,
# and with them BentoML's OpenTelemetry span per request (with no exporter configured it records nothing, but
# still builds its spans: a few % of a request's CPU).
ACCESS_LOG = os.environ.get("REWARDS_ACCESS_LOG", "").strip().lower() in {"1", "true", "yes"}
UNTRACED = [] if ACCESS_LOG else ["/recommend", "/recommend_batch", "/churn_risk", "/status", "/healthz", "/readyz",
                                  "/livez"]
# The GIL switch interval while a worker builds a new state next to the requests it serves (see _load_while_serving).
LOAD_SWITCH_INTERVAL_S = float(os.environ.get("REWARDS_LOAD_SWITCH_INTERVAL_S", "0.0002"))
# The nice value of the thread that builds a new state (0-19; higher yields the CPU to serving sooner).
LOAD_NICE = int(os.environ.get("REWARDS_LOAD_NICE", "10"))


def _settle_heap() -> None:
    """Collect, then freeze what survives (models, profiles, indexes) out of the cyclic GC.

    The serving state is millions of long-lived objects; without this, every full collection walks
    them all and stalls the event loop for 100+ ms, which is the p99 of /recommend at 200 req/s.
    Unfreeze first so a previous generation's state, now unreferenced, can still be collected.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _recommend_response(state: ServingState, request_id: str, record: dict) -> RecommendResponse:
    """The /recommend response of one decision ``record`` of ``state``."""
    return RecommendResponse(request_id=request_id, model_versions=state.model_versions, objective=state.objective,
                             profiles_as_of=state.profiles_as_of, **record)


def _respond(state: ServingState, record: dict) -> None:
    """Build and serialise the /recommend response of ``record`` as ``recommend`` does (warms pydantic's paths)."""
    _recommend_response(state, "warm-up", record).model_dump_json()


def _warmed(state: ServingState) -> ServingState:
    """``state`` after its warm-up decisions (serving.warmup), which it records; WarmUpError when one fails."""
    done = warm_up(state, respond=_respond)
    logger.info("warmed up: %s", done.describe())
    return replace(state, warmup=done)


def _load_while_serving(previous: ServingState | None = None) -> ServingState:
    """Build a new state next to the requests a worker serves: in a thread of its own, at a lower CPU
    priority (``$REWARDS_LOAD_NICE``, Linux threads have their own nice value), yielding the GIL often.

    The load is Python-heavy (pandas, the scorer check) and holds the GIL; at the default 5 ms switch
    interval every request waiting for the GIL waits that long, several times. 0.2 ms makes the
    event loop wait less at the cost of a slightly slower load; the nice value leaves the cores to the
    workers' event loops (and the load balancer) first. ``previous``: the serving state, whose models
    are reused when the champion versions did not change (``serving.loading.load_state``)."""
    import sys
    import threading

    result: dict = {}

    def build() -> None:
        try:
            with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed: normal priority
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOAD_NICE)
            result["state"] = _warmed(load_state(Settings.from_env(), previous=previous))
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = err

    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(LOAD_SWITCH_INTERVAL_S)
    try:
        builder = threading.Thread(target=build, name="state-builder", daemon=True)
        builder.start()
        builder.join()
    finally:
        sys.setswitchinterval(previous_interval)
    if "error" in result:
        raise result["error"]
    return result["state"]


def _fingerprint() -> str | None:
    """The inputs' fingerprint now, or None when it cannot be taken (then the reload rebuilds)."""
    try:
        return inputs_fingerprint(Settings.from_env())
    except Exception as err:  # noqa: BLE001 - no fingerprint only means "rebuild"
        logger.warning("cannot fingerprint the serving inputs (%s: %s); the reload rebuilds", type(err).__name__, err)
        return None


def _worker_index() -> int:
    from bentoml._internal.context import server_context

    return int(server_context.worker_index or 1)


def _describe(state: ServingState | None) -> dict:
    """What a worker serves, for its worker file (read by /status)."""
    if state is None:
        return {"profiles_as_of": None, "model_versions": {}, "customers": 0, "loaded_at": None, "ready": False,
                "warmup": None}
    return {"profiles_as_of": state.profiles_as_of, "model_versions": state.model_versions,
            "customers": len(state.book.positions), "loaded_at": state.loaded_at, "ready": True,
            "warmup": state.warmup.describe() if state.warmup is not None else None}


def _json(model) -> Response:
    """``model`` (a response schema) as a JSON response with a Content-Length: BentoML's own streams it
    chunked, three socket writes per answer instead of two."""
    return Response(model.model_dump_json(), media_type="application/json")


def _refuse(err: ApiError, path: str, ctx: bentoml.Context | None):
    """Answer ``err`` from inside an API method (BentoML would log a traceback and wrap it in a list)."""
    log_client_error(path, err)
    if ctx is not None:
        ctx.response.status_code = err.status
    return err.response()


@bentoml.service(
    name="offer-api",
    workers=WORKERS,
    traffic={"timeout": SERVER_TIMEOUT_S, "max_concurrency": 256},
    resources={"cpu": "1"},
    logging={"access": {"enabled": ACCESS_LOG}},
    metrics={"enabled": ACCESS_LOG},
    tracing={"excluded_urls": UNTRACED},
)
class OfferService:
    """Next-best offers, churn risk, status and hot reload. Business rules live in models.policy."""

    def __init__(self) -> None:
        self._settings_error: str | None = None
        self._state: ServingState | None = None
        self._load_error: str | None = None
        self._fingerprints: dict[int, str | None] = {}  # id(state) -> fingerprint of its inputs
        self.rebuilt = True  # whether the last load built a new state (False: inputs unchanged)
        self.coordinator: GenerationCoordinator | None = None
        try:
            self.settings = Settings.from_env()
            thresholds = ReloadThresholds.from_env()
            store_timezone()  # a misspelt zone is a start-up error, not a 400 on every request
            decisions_from_env()
        except (ServingLoadError, WarmUpConfigError, ValueError) as err:
            self.settings = None
            self._settings_error = str(err)
            logger.error("offer API not ready: %s", err)
            return
        self.log = DecisionLog(self.settings.decision_log)
        try:
            fingerprint = _fingerprint()
            self._state = _warmed(load_state(self.settings))  # warmed before this worker reports ready
            self._fingerprints = {id(self._state): fingerprint}
            _settle_heap()
            logger.info(
                "offer API loaded: models %s, profiles as of %s, %d customers, %d offers, %s scorer, loaded in %.1f s",
                self._state.model_versions, self._state.profiles_as_of, len(self._state.book.positions),
                len(self._state.catalog), self._state.scorer_kind, self._state.load_seconds,
            )
        except Exception as err:  # noqa: BLE001 - ServingLoadError, or a bug: either way not ready
            # Stay up but not ready: /readyz says 503 until a successful POST /admin/reload.
            self._load_error = str(err)
            logger.exception("offer API not ready: %s", err)
        from pipelines import config

        self.coordinator = GenerationCoordinator(
            GenerationBoard(config.data_dir() / "serving"), _worker_index(), WORKERS, thresholds,
            load=self._load, current=lambda: self._state,
            install=self._install, describe=_describe,
        )
        self.coordinator.start()

    def __is_ready__(self) -> bool:
        """Ready when this worker serves a warmed-up state and so does every worker of this server.

        /readyz is answered by whichever worker takes the connection; the others may still be loading
        (then their first requests would pay the cold start) or have failed to load. Each worker's file on
        the generation board says whether it serves (written after the warm-up, ``_describe``)."""
        if self._state is None or self.coordinator is None:
            return False
        return len(self.coordinator.board.ready_workers()) >= WORKERS

    # ---- helpers ---------------------------------------------------------------------------

    def _load(self, force: bool = False) -> ServingState:
        """A state for the next generation: the serving one when nothing it was built from changed
        (unless ``force``), else a new one."""
        current, fingerprint = self._state, _fingerprint()
        if not force and current is not None and fingerprint is not None \
                and self._fingerprints.get(id(current)) == fingerprint:
            self.rebuilt = False
            return current
        state = _load_while_serving(None if force else current)
        self._fingerprints[id(state)] = fingerprint
        self.rebuilt = True
        return state

    def _install(self, state: ServingState, generation: int) -> None:
        if state is self._state:
            return  # inputs unchanged: nothing to swap
        self._fingerprints = {id(state): self._fingerprints.get(id(state))}
        self._state = state  # the swap: one reference assignment
        # Freeze the new state out of the cyclic GC without a full collection: gc.collect() walks the
        # whole heap holding the GIL (100s of ms with the event loop waiting). The old state is freed
        # by reference counting when the last request using it ends.
        gc.freeze()

    @property
    def last_reload_error(self) -> str | None:
        coordinator_error = self.coordinator.last_error if self.coordinator else None
        return coordinator_error or self._load_error or self._settings_error

    def _serving(self) -> ServingState:
        state = self._state  # one read: a concurrent reload cannot mix two generations
        if state is None:
            raise ApiError(503, "not_ready", f"models and profiles are not loaded: {self.last_reload_error}")
        return state

    def _decide(self, state: ServingState, customer_ids: list[str], k: int, context: RequestContext,
                offer_ids: list[str] | None):
        try:
            ctx = Context(context.timestamp, context.channel, context.store_id, vocabulary=state.catalog.vocabulary)
            return state.decide(customer_ids, ctx, k, offer_ids)
        except UnknownChannelError as err:
            raise ApiError(400, "invalid", str(err), "context.channel") from err
        except UnknownOfferError as err:
            raise ApiError(404, "unknown_offer", str(err), "offer_ids") from err
        except PolicyError as err:
            raise ApiError(400, "invalid", str(err)) from err

    def _log(self, request_id: str, endpoint: str, state: ServingState, context: RequestContext, records: list[dict]) -> None:
        """What attribution needs: who, when, where, which offers at which rank and score, from which models."""
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
                    "objective": state.objective,
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
        try:
            state = self._serving()
            request_id = self._request_id(ctx)
            record = self._decide(state, [customer_id], k, context, offer_ids).records()[0]
        except ApiError as err:
            return _refuse(err, "/recommend", ctx)
        self._log(request_id, "recommend", state, context, [record])
        return _json(_recommend_response(state, request_id, record))

    @bentoml.api(route="/recommend_batch", input_spec=RecommendBatchRequest, output_spec=BatchResponse)
    def recommend_batch(self, customer_ids: list[str], context: RequestContext, k: int = 3,
                        offer_ids: list[str] | None = None, ctx: bentoml.Context = None) -> BatchResponse:
        """The top-k offers for up to 1,000 customers in the same context.

        A repeated id is decided (and logged) once; its decision is repeated at each of its positions,
        so the cost is linear in the distinct ids."""
        try:
            state = self._serving()
            request_id = self._request_id(ctx)
            distinct = list(dict.fromkeys(customer_ids))
            records = self._decide(state, distinct, k, context, offer_ids).records()
        except ApiError as err:
            return _refuse(err, "/recommend_batch", ctx)
        self._log(request_id, "recommend_batch", state, context, records)
        decisions = {r["customer_id"]: Decision(**r) for r in records}
        return _json(BatchResponse(
            request_id=request_id,
            results=[decisions[c] for c in customer_ids],
            model_versions=state.model_versions,
            objective=state.objective,
            profiles_as_of=state.profiles_as_of,
        ))

    @bentoml.api(route="/churn_risk", input_spec=ChurnRequest, output_spec=ChurnResponse)
    def churn_risk(self, customer_ids: list[str], ctx: bentoml.Context = None) -> ChurnResponse:
        """Predicted churn risk of up to 1,000 customers (null for customers without a profile)."""
        try:
            state = self._serving()
        except ApiError as err:
            return _refuse(err, "/churn_risk", ctx)
        batch = state.book.batch(list(dict.fromkeys(customer_ids)))
        known = {c: (bool(k), float(r) if k else None)
                 for c, k, r in zip(batch.customer_id, batch.known, batch.churn_risk, strict=True)}
        results = [ChurnRisk(customer_id=c, known=known[c][0], churn_risk=known[c][1]) for c in customer_ids]
        return ChurnResponse(results=results, model_version=state.churn_version, profiles_as_of=state.profiles_as_of)

    @bentoml.api(route="/status", input_spec=EmptyRequest, output_spec=StatusResponse)
    def status(self) -> StatusResponse:
        """What is serving, in every worker: generation, model versions, profile snapshot, sizes, last reload error."""
        state = self._state
        workers = self.coordinator.board.workers() if self.coordinator else []
        return StatusResponse(
            ready=state is not None,
            generation=self.coordinator.generation if state is not None and self.coordinator else None,
            model_versions=state.model_versions if state else {},
            profiles_as_of=state.profiles_as_of if state else None,
            customers=len(state.book.positions) if state else 0,
            offers=len(state.catalog) if state else 0,
            scorer=state.scorer_kind if state else "none",
            loaded_at=state.loaded_at if state else None,
            last_reload_error=self.last_reload_error,
            workers=[WorkerStatus(**w) for w in workers],
        )

    @bentoml.api(route="/admin/reload", input_spec=ReloadRequest, output_spec=ReloadResponse)
    def reload(self, force: bool = False, ctx: bentoml.Context = None) -> ReloadResponse:
        """Build models and profiles anew in every worker, check them against the serving state, then switch
        all workers to the new generation at once; on any failure none switches (409) and the old one serves on."""
        if self.coordinator is None:
            return _refuse(ApiError(409, "reload_refused", f"the server is misconfigured: {self._settings_error}"),
                           "/admin/reload", ctx)
        previous = self._state
        prev_versions = previous.model_versions if previous else {}
        prev_as_of = previous.profiles_as_of if previous else ""
        previous = None  # do not keep the old generation alive past the swap
        started = time.perf_counter()
        try:
            generation = self.coordinator.coordinate(force)
        except ReloadRefused as err:
            still = (f"still serving generation {self.coordinator.generation}: models {prev_versions}, "
                     f"profiles as of {prev_as_of}") if prev_versions else "nothing is serving"
            logger.warning("reload refused (%s): %s", still, err)
            return _refuse(ApiError(409, "reload_refused", f"reload refused, {still}: {err}"), "/admin/reload", ctx)
        state = self._state
        logger.info("reloaded generation %d: models %s, profiles as of %s", generation, state.model_versions,
                    state.profiles_as_of)
        return ReloadResponse(
            status="reloaded",
            generation=generation,
            forced=force,
            rebuilt=self.rebuilt,
            model_versions=state.model_versions,
            profiles_as_of=state.profiles_as_of,
            previous_model_versions=prev_versions,
            previous_profiles_as_of=prev_as_of,
            seconds=round(time.perf_counter() - started, 2),
        )


# Outermost first: the key is checked before anything about the body is said.
OfferService.add_asgi_middleware(ApiKeyMiddleware)
OfferService.add_asgi_middleware(RequestGuard)
