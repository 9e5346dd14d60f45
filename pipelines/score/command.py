"""`rewards score`: a campaign list for every customer, with a holdout group and a summary.

The same decision set-up the offer API builds (``models.policy.setup.decision_setup``) applied to
customers in chunks, so memory stays bounded whatever the customer count: ``ChunkDecider``
(``pipelines.score.chunks``) decides one chunk; the in-process engine (``pipelines.score.workers``)
and the Spark engine (``pipelines.spark_engine``) both run it; ``pipelines.score.writer`` writes the
list, its exclusions and its summary atomically.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import typer

from models.campaign import CampaignSummary, budget_remaining_by_offer
from pipelines.score.chunks import (ChunkDecider, CustomerRows, as_frames, profile_chunks_from_file,
                                    profile_chunks_with_tables, read_log, table_chunks)
from pipelines.score.request import Engine, ScoreError, ScoreRequest, chunk_size_for
from pipelines.score.workers import default_workers, score_customers
from pipelines.score.writer import scratch_dir, write_campaign


def build_chunk_decider(
    request: ScoreRequest, tables: dict[str, pd.DataFrame], models: dict, feature_names: list[str] | None = None
) -> ChunkDecider:
    """The ChunkDecider for a request: the shared decision set-up (offers and contact history indexed
    once, the campaign's holdout rule, the P(redeem) scorer, the uplift scorer under the uplift objective)
    without customers; each chunk adds its own. ``models["uplift"]`` is (model, version) or (None, None)."""
    from models.policy import PolicyConfig
    from models.policy.setup import decision_setup
    from pipelines.compiled import compiled_predictor

    (offer_model, offer_version), (churn_model, churn_version) = models["offer"], models["churn"]
    uplift_model, uplift_version = models.get("uplift", (None, None))
    policy = PolicyConfig(**{**request.policy, **({"objective": request.objective} if request.objective else {})})
    # Local chunks bring their own tables (taxonomy columns: cut from the tables, or a profile file's
    # chunk with its customers' rows); Spark partitions do not, so that set-up keeps the tables. The local
    # set-up never sees the purchase log (it goes to every worker: each chunk brings its own lines).
    if request.engine is Engine.local:
        tables = {name: frame for name, frame in tables.items() if name != "transactions"}
    setup = decision_setup(
        tables, churn_model, offer_model, policy=policy, campaign=request.campaign_spec,
        feature_names=feature_names, predict=compiled_predictor(offer_model), uplift_model=uplift_model,
        vocabulary=policy_vocabulary(request.data, tables),
        as_of=request.as_of, taxonomy_tables=request.engine is not Engine.local,
    )
    versions = {"offer": str(offer_version), "churn": str(churn_version)}
    if setup.uplift is not None:
        versions["uplift"] = str(uplift_version)
    return ChunkDecider(
        setup=setup,
        model_versions=versions,
        context=request.campaign_spec.context,
        campaign=request.campaign,
        as_of=request.as_of,
        k=request.k,
        offer_ids=request.offer_ids,
    )


def policy_vocabulary(data_dir, tables: dict[str, pd.DataFrame]):
    """The policy's vocabulary from the program file of the validated data (default folder: data/validated)."""
    from models.policy import Vocabulary
    from pipelines import config as paths
    from pipelines.io import read_validated_program

    program, _ = read_validated_program(Path(data_dir) if data_dir is not None else paths.validated_dir())
    return Vocabulary.from_program(program, tables.get("offers"))


def profile_feature_names(path: Path, as_of: pd.Timestamp) -> list[str]:
    """The features of a profiles file, from its manifest; it must have been built at ``as_of``."""
    import pyarrow.parquet as pq

    from features.manifest import check_manifest, manifest_feature_names
    from pipelines.build_features import read_manifest

    if not Path(path).exists():
        raise ScoreError(f"--profiles '{path}' does not exist; build it with `rewards features` or leave it out")
    manifest = read_manifest(Path(path))
    built_at = pd.Timestamp(manifest.get("as_of"))
    if built_at != pd.Timestamp(as_of):
        raise ScoreError(
            f"--profiles '{path}' were built as of {built_at}, but --as-of is {pd.Timestamp(as_of)}; "
            "rebuild them with `rewards features --as-of` or drop --profiles to build them here"
        )
    check_manifest(pq.read_schema(path).names, manifest)
    return manifest_feature_names(manifest)


def read_driver_tables(data_dir: Path, needs_history_tables: bool) -> dict[str, pd.DataFrame]:
    """The validated tables this process needs: all of them to build profiles here, else only
    customers, offers and offer_events (Spark workers, or ready profiles, cover the rest)."""
    from pipelines.io import read_validated

    if needs_history_tables:
        return read_validated(data_dir)
    from pipelines.io import read_validated_table

    return {name: read_validated_table(data_dir, name) for name in ("customers", "offers", "offer_events")}


def load_models(tracking_uri: str | None, objective: str | None = None) -> dict:
    """The champion offer-response and churn models with their registry versions, and the champion uplift
    model under the uplift objective ((None, None) otherwise; UpliftObjectiveError when there is none).
    The offer entry is ``(None, None)`` when no offer-response model is champion (a retention list is
    written then)."""
    from pipelines.config import CHURN_MODEL_NAME, OFFER_MODEL_NAME
    from pipelines.registry import NoChampionError, load_champion
    from pipelines.train_uplift import uplift_for

    churn = load_champion(CHURN_MODEL_NAME, tracking_uri)
    try:
        offer = load_champion(OFFER_MODEL_NAME, tracking_uri)
    except NoChampionError:
        offer = (None, None)
    return {"offer": offer, "churn": churn, "uplift": uplift_for(objective, tracking_uri)}


def taxonomy_tables(data_dir: Path, tables: dict[str, pd.DataFrame], arrow: bool = True) -> dict[str, pd.DataFrame | pa.Table]:
    """The validated tables the taxonomy columns read (``SOURCE_TABLES``) that ``tables`` lacks; of the
    purchase log only the columns they read (``TAXONOMY_TRANSACTION_COLUMNS``), as Arrow with its strings
    as dictionary codes (``pipelines.score.chunks.read_log``: 100k grocery households' 25M lines are
    ~0.8 GB so, ~6 GB as pandas), for ``CustomerRows`` to cut into each chunk's rows; ``arrow=False``:
    as pandas (the Spark engine's set-up keeps the tables and computes from them)."""
    from models.offer_taxonomy import SOURCE_TABLES, TAXONOMY_TRANSACTION_COLUMNS
    from pipelines.io import read_validated_table

    out = {}
    path = Path(data_dir) / "transactions.parquet"
    if "transactions" not in tables and path.exists():
        log = read_log(path, TAXONOMY_TRANSACTION_COLUMNS)
        out["transactions"] = log if arrow else as_frames({"transactions": log})["transactions"]
    for name in SOURCE_TABLES:  # the small tables, one by one (never the whole folder: it holds the log)
        if name not in tables and name not in out and (Path(data_dir) / f"{name}.parquet").exists():
            out[name] = read_validated_table(data_dir, name)
    return out


def _active_offers(catalog, request: ScoreRequest) -> int:
    """Offers the list can choose from at the send time (valid then, and among --offers when given)."""
    t = request.send_at.value
    ok = (catalog.valid_from <= t) & (t <= catalog.valid_to)
    if request.offer_ids is not None:
        ok &= catalog.index.isin([str(o) for o in request.offer_ids])
    return int(ok.sum())


# The offer model "version" of a list ranked by the cold-start prior (no offer-response model is champion).
COLD_START_VERSION = "cold-start prior"


def no_offers_reason(tables: dict, models: dict) -> str | None:
    """Why this run writes a retention list instead of offers (None: it writes offers)."""
    if not len(tables["offers"]):
        return "table 'offers' has no rows (absent from the validated data)"
    if models["offer"][0] is None:
        return "no offer-response model is champion (`rewards train offers` needs offer history)"
    return None


def run_score(request: ScoreRequest, models: dict | None = None, tables: dict | None = None, spark=None) -> dict:
    """Score every customer for ``request`` and write the outputs; the summary dict is returned.

    ``models`` ({"offer": (estimator, version), "churn": ...}) and ``tables`` default to the
    champion models and the validated tables; ``spark`` reuses an existing session (tests).
    """
    from pipelines import config as paths

    started = time.perf_counter()
    data_dir = Path(request.data) if request.data is not None else paths.validated_dir()
    if tables is None:
        tables = read_driver_tables(data_dir, needs_history_tables=request.engine is Engine.local and request.profiles is None)
    names = profile_feature_names(request.profiles, request.as_of) if request.profiles is not None else None
    if request.objective is None:  # the default: uplift once an offer-uplift model is champion (or is given)
        from pipelines.train_uplift import OBJECTIVE_EXPECTED_VALUE, OBJECTIVE_UPLIFT, default_objective

        given_uplift = models is not None and models.get("uplift", (None, None))[0] is not None
        objective = (default_objective(request.tracking_uri) if models is None
                     else OBJECTIVE_UPLIFT if given_uplift else OBJECTIVE_EXPECTED_VALUE)
        request = replace(request, objective=objective)
    from pipelines.registry import check_same_program

    if models is None:  # champions from the registry: they must have been trained on this data's program
        models = load_models(request.tracking_uri, request.objective)
        digest, _ = check_same_program(models, data_dir, request.tracking_uri)
    else:
        digest, _ = check_same_program({}, data_dir)
    why = no_offers_reason(tables, models)
    if (why is not None and len(tables["offers"]) and models["offer"][0] is None
            and policy_vocabulary(data_dir, tables).offer_channels):
        # Offers that can go out on a channel but no trained offer model (no offer history yet): the offers
        # are ranked by the cold-start prior (models.policy.cold_start), every decision flagged cold_start,
        # by the same policy. Offers on no channel at all (e.g. imported discount codes) get a retention list.
        from models.policy.cold_start import ColdStartOfferModel, base_redemption_rate

        prior = ColdStartOfferModel(base_redemption_rate(tables.get("offer_events")))
        models = {**models, "offer": (prior, COLD_START_VERSION)}
        why = None
    from models.offer_taxonomy import uses_taxonomy

    if why is None and uses_taxonomy(models["offer"][0]) and "transactions" not in tables:
        # the purchase log (and products) they read
        tables = {**tables, **taxonomy_tables(data_dir, tables, arrow=request.engine is Engine.local)}
    if why is not None:
        from pipelines.io import read_validated
        from pipelines.score.retention import run_retention

        request.data = data_dir
        full = tables if "transactions" in tables else read_validated(data_dir)
        return run_retention(request, full, models["churn"], why, digest)
    channels = policy_vocabulary(data_dir, tables).offer_channels  # a list of offers goes out on one of them
    if request.channel not in channels:
        raise ScoreError(f"--channel must be one of the program's offer channels {list(channels)} (program file "
                         f"'{data_dir / 'program.toml'}', key offer_channels), got {request.channel!r}")
    decider = build_chunk_decider(request, tables, models, names)
    if request.offer_ids is not None:
        unknown = [o for o in request.offer_ids if o not in decider.catalog.index]
        if unknown:
            raise ScoreError(f"--offers {unknown} are not in the offer catalogue; known offers: {list(decider.catalog.index)}")
    if request.chunk_size is None:
        carried = decider.setup.taxonomy is not None and "transactions" in tables and len(tables["customers"])
        per_customer = len(tables["transactions"]) / len(tables["customers"]) if carried else 0.0
        request.chunk_size = chunk_size_for(_active_offers(decider.catalog, request), per_customer)
    summary = CampaignSummary(
        cost_per_redemption=dict(zip(decider.catalog.index, decider.catalog.cost.tolist(), strict=True)),
        budget_remaining=budget_remaining_by_offer(decider.catalog, decider.history, request.send_at).to_dict(),
    )
    meta = {
        "campaign": request.campaign,
        "as_of": str(request.as_of.date()) if request.as_of == request.as_of.normalize() else str(request.as_of),
        "send_at": str(request.send_at),
        "channel": request.channel,
        "k": request.k,
        "holdout_fraction": request.holdout,
        "offers_requested": request.offer_ids,
        "engine": request.engine.value,
        "objective": decider.setup.objective,
        "model_versions": decider.model_versions,
    }
    if request.engine is Engine.local:
        customers = tables["customers"].set_index("customer_id")
        if request.profiles is not None:
            chunks = profile_chunks_from_file(request.profiles, request.chunk_size)
            if decider.setup.taxonomy is not None and "transactions" in tables:  # each chunk with its customers' rows
                from models.offer_taxonomy import SOURCE_TABLES

                rows_by_customer = CustomerRows({n: tables[n] for n in SOURCE_TABLES if n in tables})
                pa.default_memory_pool().release_unused()  # the set-up's Arrow temporaries
                chunks = profile_chunks_with_tables(chunks, rows_by_customer)
            total = _count_rows(request.profiles)
        else:
            from pipelines.io import read_validated_program

            chunks = table_chunks(tables, request.as_of, request.chunk_size, read_validated_program(data_dir)[0])
            total = int((tables["customers"]["signup_date"] < request.as_of).sum())
        n_chunks = -(-total // request.chunk_size)
        workers = min(request.workers or default_workers(), max(n_chunks, 1))
        meta["workers"] = workers
        with _progress(total, request.progress and total > request.chunk_size) as advance:
            rows = score_customers(chunks, decider, customers, advance, workers=workers)
            result = write_campaign(rows, request.out, summary, meta)
    else:
        meta["spark_master"] = request.spark_master
        from pipelines.spark_engine import spark_chunks, spark_for

        with spark_for(request, spark) as session, scratch_dir(request.out) as scratch:
            # Filled while the rows stream in, so the summary file gets the stage times too.
            meta["spark_stage_seconds"] = timings = {}
            chunks = spark_chunks(session, request, decider, tables, data_dir, scratch, timings)
            result = write_campaign(chunks, request.out, summary, meta)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result




def _count_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


class _progress:
    """A rich progress bar over customers (stderr), or a no-op when the run is short or not wanted."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.bar = total, enabled, None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("scoring customers"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), console=Console(stderr=True),
        )
        self.bar.start()
        task = self.bar.add_task("score", total=self.total or None)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()



def summary_table(summary: dict):
    """The summary as a rich table for the terminal."""
    from rich.table import Table

    table = Table(title=f"campaign '{summary['campaign']}' as of {summary['as_of']}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("customers considered", f"{summary['customers_considered']:,}")
    table.add_row("customers with offers", f"{summary['customers_with_offers']:,}")
    for reason, n in summary["excluded_by_reason"].items():
        table.add_row(f"excluded: {reason}", f"{n:,}")
    table.add_row("offers in the list", f"{summary['offers']:,}")
    for category, n in summary["offers_per_reward_category"].items():
        table.add_row(f"offers: {category}", f"{n:,}")
    table.add_row("expected redemptions", f"{summary['expected_redemptions']:,.1f}")
    table.add_row("expected cost", f"{summary['expected_cost']:,.2f}")
    table.add_row("expected value", f"{summary['expected_value']:,.2f}")
    limited = [b for b in summary["budget"] if b["budget_remaining"] is not None]
    for b in limited:
        withdrawn = f" ({b['withdrawn_for_budget']:,} offers withdrawn)" if b["withdrawn_for_budget"] else ""
        table.add_row(
            f"budget {b['offer_id']}",
            f"{b['expected_redemptions']:,.1f} of {b['budget_remaining']:,} remaining{withdrawn}",
        )
    if summary["offers_over_budget"]:
        table.add_row("over budget (expected)", ", ".join(summary["offers_over_budget"]))
    table.add_row("ranked by", summary["objective"].replace("_", " "))
    table.add_row("model versions", ", ".join(f"{k} v{v}" for k, v in summary["model_versions"].items()))
    table.add_row("engine / seconds", f"{summary['engine']} / {summary['seconds']}")
    return table


def run_failures() -> tuple[type[BaseException], ...]:
    """The registry and Spark errors a run reports in one line (those whose library is installed)."""
    from pipelines.spark_engine import SparkEngineError

    found: list[type[BaseException]] = [SparkEngineError]
    for module, name in (("mlflow.exceptions", "MlflowException"), ("pyspark.errors", "AnalysisException"),
                         ("py4j.protocol", "Py4JJavaError")):
        try:
            found.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(found)


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"rewards score: {message}", fg="red", err=True)
    raise typer.Exit(code)


def score_command(
    as_of: str = typer.Option(..., "--as-of", help="Profiles use data strictly before this date (YYYY-MM-DD)."),
    campaign: str = typer.Option(..., help="Campaign name; it also seeds the holdout group."),
    out: Path = typer.Option(..., help="The campaign list to write (.parquet or .csv)."),
    offers: str | None = typer.Option(None, "--offers", help="Comma-separated offer ids to choose from (default: all active)."),
    k: int = typer.Option(1, "--k", help="Offers per customer (at most one per reward category)."),
    holdout: float = typer.Option(0.05, help="Fraction of customers held out as control (no offer, flagged)."),
    channel: str = typer.Option("email", help="Channel the campaign is sent on: one of the program's offer channels (program.toml, offer_channels)."),
    send_at: str | None = typer.Option(None, "--send-at", help="Send time (context of the decision); default as_of 09:00."),
    engine: Engine = typer.Option(Engine.local, help="local: in process, in chunks; spark: on a Spark cluster."),
    spark_master: str = typer.Option("local[2]", "--spark-master", help="Spark master URL for --engine spark."),
    data: Path | None = typer.Option(None, help="Folder of validated tables (default: data/validated)."),
    profiles: Path | None = typer.Option(None, help="Ready profiles (Parquet) at as_of; built from --data when absent."),
    chunk_size: int | None = typer.Option(
        None, "--chunk-size", help="Customers scored at a time (bounds memory); default 50,000, fewer past 200 active "
        "offers (10,000,000 customer x offer pairs a chunk)."),
    workers: int = typer.Option(0, "--workers", help="Scoring processes for --engine local (0: one per core)."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (default from config)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on long runs."),
    objective: str | None = typer.Option(
        None, "--objective", help="Rank offers by expected_value (P(redeem) x value) or uplift (the champion "
        "offer-uplift model's incremental value); default: uplift once that model is champion, else expected_value."),
) -> None:
    """Write a campaign list: every customer scored with the champion models and the offer policy."""
    from rich.console import Console

    from features.manifest import FeatureMismatchError
    from models.policy import PolicyError
    from pipelines.registry import ProgramMismatchError

    try:
        as_of_ts = pd.Timestamp(as_of)
        send_ts = pd.Timestamp(send_at) if send_at else None
    except ValueError as err:
        _fail(f"--as-of/--send-at must be dates like 2026-06-30 or 2026-06-30T09:00: {err}")
    offer_ids = [o.strip() for o in offers.split(",") if o.strip()] if offers else None
    try:
        request = ScoreRequest(
            as_of=as_of_ts, campaign=campaign, out=out, k=k, holdout=holdout, offer_ids=offer_ids, channel=channel,
            send_at=send_ts, engine=engine, spark_master=spark_master, data=data, profiles=profiles,
            chunk_size=chunk_size, workers=workers, tracking_uri=tracking_uri, progress=progress, objective=objective,
        )
        summary = run_score(request)
    except (ScoreError, PolicyError, FileNotFoundError, LookupError, FeatureMismatchError, ProgramMismatchError) as err:
        _fail(str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err))  # KeyError quotes its text
    except run_failures() as err:  # registry and Spark failures: one line, not a traceback
        _fail(f"{type(err).__name__}: {err}")
    paths = summary["outputs"]
    if summary.get("kind") == "retention":
        typer.echo(f"retention list (no offers: {summary['why_no_offers']}): {summary['customers_listed']:,} customers "
                   f"listed ({summary['customers_held_out']:,} held out), {summary['customers_excluded']:,} excluded "
                   f"{summary['excluded_by_reason']}, of {summary['customers_in_table']:,} in the customers table; "
                   f"expected value at risk {summary['expected_value']:,.2f}")
        typer.echo(f"list: {paths['list']}\nexclusions: {paths['exclusions']}\nsummary: {paths['summary']}")
        return
    Console().print(summary_table(summary))
    if summary.get("model_versions", {}).get("offer") == COLD_START_VERSION:
        typer.echo("no offer-response model is champion (it needs offer history): offers ranked by the cold-start "
                   "prior (the customer's affinity to the offer's node and its value), every row flagged cold_start")
    typer.echo(f"list: {paths['list']} ({summary['rows_in_list']:,} rows)")
    typer.echo(f"exclusions: {paths['exclusions']}")
    typer.echo(f"summary: {paths['summary']}")
