"""The MLflow model registry edge: load the champion, promote by hand, list versions.

Models are logged by ``pipelines.train`` with the sklearn flavor (cloudpickle), so loading returns
our own estimator objects (``models.churn.ChurnModel``, ``models.offer_response.OfferResponseModel``)
with ``predict_proba`` and ``contributions``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines import config

CHAMPION = "champion"
CHALLENGER = "challenger"
KEY_METRICS = ("roc_auc", "pr_auc", "ece", "ndcg_at_3")


class NoChampionError(LookupError):
    """The registered model has no version with the champion alias (or does not exist)."""

    def __init__(self, name: str, tracking_uri: str):
        self.name = name
        super().__init__(
            f"registered model '{name}' has no '{CHAMPION}' version in the MLflow store at {tracking_uri}; "
            "run `rewards train` first (or `rewards promote --model NAME --version V`)"
        )


def _trusted_deserialization():
    """Allow MLflow to unpickle the model: these are our own models from our own registry."""
    return config.environment(MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true")


def _client(tracking_uri: str | None):
    from mlflow import MlflowClient

    from pipelines.config import tracking_uri as default_tracking_uri

    uri = tracking_uri or default_tracking_uri()
    return MlflowClient(tracking_uri=uri), uri


def load_version(client, name: str, version: str):
    """Our estimator object for ``name`` version ``version`` (read straight from its artifact location)."""
    import mlflow.sklearn

    location = client.get_model_version_download_uri(name, str(version))
    with _trusted_deserialization():
        return mlflow.sklearn.load_model(location)


PROGRAM_DIGEST_TAG = "program_digest"


class ProgramMismatchError(ValueError):
    """A model was trained on data of another program (program file) than the data it is asked to score."""

    def __init__(self, model: str, model_digest: str, data_digest: str, data_dir):
        self.model_digest, self.data_digest = model_digest, data_digest
        super().__init__(
            f"model '{model}' was trained on data of program {model_digest}, but the data in '{data_dir}' is "
            f"of program {data_digest}; retrain on this data (`rewards train`), or validate the data with the "
            "program file the model was trained on (`rewards validate DIR --program FILE`)"
        )


def check_same_program(models: dict, data_dir, tracking_uri: str | None = None) -> tuple[str, str | None]:
    """``(digest, note)`` of the validated data's program, after checking every model of ``models``
    (``{key: (estimator, version)}`` with keys 'churn'/'offer', a None estimator skipped) was trained on it.

    Raises ProgramMismatchError naming both digests. A version logged without a digest (before
    programs travelled with the data) is not checked."""
    from data_contracts.program import program_digest
    from pipelines.config import CHURN_MODEL_NAME, OFFER_MODEL_NAME
    from pipelines.io import read_validated_program

    program, note = read_validated_program(data_dir)
    digest = program_digest(program)
    names = {"churn": CHURN_MODEL_NAME, "offer": OFFER_MODEL_NAME}
    client = None
    for key, (model, version) in models.items():
        if model is None or version is None or key not in names:
            continue
        client = client or _client(tracking_uri)[0]
        tags = client.get_model_version(names[key], str(version)).tags
        trained_on = tags.get(PROGRAM_DIGEST_TAG)
        if trained_on is not None and trained_on != digest:
            raise ProgramMismatchError(f"{names[key]} version {version}", trained_on, digest, data_dir)
    return digest, note


def load_champion(name: str, tracking_uri: str | None = None):
    """(estimator, version) of the version with alias ``champion``; NoChampionError if there is none."""
    from mlflow.exceptions import MlflowException

    client, uri = _client(tracking_uri)
    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        raise NoChampionError(name, uri) from None
    return load_version(client, name, mv.version), str(mv.version)


def promote(name: str, version: str, reason: str, tracking_uri: str | None = None) -> str | None:
    """Move the champion alias to ``version`` by hand; the old champion becomes challenger. Returns it."""
    from mlflow.exceptions import MlflowException

    client, _ = _client(tracking_uri)
    client.get_model_version(name, str(version))  # raises if it does not exist
    try:
        old = client.get_model_version_by_alias(name, CHAMPION).version
    except MlflowException:
        old = None
    if old is not None and str(old) != str(version):
        client.set_registered_model_alias(name, CHALLENGER, str(old))
    client.set_registered_model_alias(name, CHAMPION, str(version))
    client.set_model_version_tag(name, str(version), "gate.decision", "promoted_manually")
    client.set_model_version_tag(name, str(version), "gate.manual_reason", reason)
    client.set_model_version_tag(name, str(version), "gate.replaced_champion", "none" if old is None else str(old))
    return None if old is None else str(old)


def model_versions(name: str, tracking_uri: str | None = None) -> list[dict]:
    """One dict per version: version, aliases, run_id, gate decision and key metrics (newest first)."""
    client, _ = _client(tracking_uri)
    rows = []
    for mv in client.search_model_versions(f"name='{name}'"):
        full = client.get_model_version(name, mv.version)
        metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
        rows.append(
            {
                "version": str(mv.version),
                "aliases": ",".join(full.aliases),
                "run_id": mv.run_id,
                "decision": full.tags.get("gate.decision", ""),
                **{m: metrics.get(m) for m in KEY_METRICS if m in metrics},
            }
        )
    return sorted(rows, key=lambda r: int(r["version"]), reverse=True)


def promote_latest_without_champion(names: list[str], reason: str, tracking_uri: str | None = None) -> list[str]:
    """Make the newest version the champion of each model that has versions but no champion; the promoted names."""
    promoted = []
    for name in names:
        versions = model_versions(name, tracking_uri)
        if versions and not any("champion" in v["aliases"].split(",") for v in versions):
            promote(name, versions[0]["version"], reason=reason, tracking_uri=tracking_uri)
            promoted.append(name)
    return promoted


def promote_command(
    model: Annotated[str, typer.Option("--model", help="Registered model name, e.g. churn-risk or offer-response.")],
    version: Annotated[str, typer.Option("--version", help="Version to make champion.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the gate is overridden (stored as a tag).")] = "manual override",
) -> None:
    """Make a model version the champion by hand (the gate is bypassed; the reason is recorded)."""
    from mlflow.exceptions import MlflowException

    try:
        old = promote(model, version, reason)
    except MlflowException as err:
        typer.echo(f"error: cannot promote {model} version {version}: {err.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{model} version {version} is now champion" + (f" (was version {old})" if old else ""))


def models_command() -> None:
    """List registered versions of the project's models with aliases, gate decisions and key metrics."""
    from pipelines.config import CHURN_MODEL_NAME, OFFER_MODEL_NAME

    for name in (CHURN_MODEL_NAME, OFFER_MODEL_NAME):
        rows = model_versions(name)
        typer.echo(f"\n== {name}: {len(rows)} version(s)")
        for r in rows:
            metrics = "  ".join(f"{m}={r[m]:.4f}" for m in KEY_METRICS if r.get(m) is not None)
            typer.echo(f"  v{r['version']:<4} {r['aliases'] or '-':<22} {r['decision'] or '-':<18} {metrics}")
