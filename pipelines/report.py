"""`rewards report`: one self-contained HTML page on a measured campaign, with real plots.

Reads ``<list>.measurement.json`` (run `rewards measure` first) and, when given, an uplift evaluation
(``uplift_evaluation.json`` from `rewards train uplift`), and writes ``<list>.report.html`` beside the list.
The charts are matplotlib figures embedded as inline SVG: the page loads nothing from anywhere.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

import numpy as np
import typer

from pipelines.measure import output_path

COLOURS = {"treated": "#2b6cb0", "held_out": "#a0aec0", "model": "#2f855a", "response": "#c05621", "random": "#718096"}


MIN_OFFER_CUSTOMERS = 20  # offers sent to fewer customers are too noisy to chart
MIN_SEGMENT_HELD_OUT = 20  # segments with fewer held-out customers likewise (they stay in the JSON)


def _pyplot():
    """matplotlib's pyplot on the Agg backend, imported when a chart is drawn: the `rewards` command line
    imports this module for every command, and pyplot alone takes ~0.35 s to import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class ReportError(ValueError):
    """The report cannot be written (no measurement beside the list, an unreadable evaluation)."""


def _svg(fig) -> str:
    """A figure as inline SVG markup (no XML header), closed after rendering."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    _pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _err(est: dict) -> tuple[float, float, float]:
    v = est["value"] or 0.0
    return v, v - (est["low"] if est["low"] is not None else v), (est["high"] if est["high"] is not None else v) - v


def incremental_by_group_figure(m: dict):
    """Incremental revenue per treated customer, overall and per segment, with 95% interval error bars."""
    cur = m["economics"]["currency"]
    labels, values, lo, hi = [], [], [], []
    v, a, b = _err(m["incremental_per_treated"]["revenue"])
    labels.append("all customers"), values.append(v), lo.append(a), hi.append(b)
    for seg, rows in m["segments"].items():
        for row in rows:
            est = row.get("incremental_revenue_per_treated")
            if est is None or row["customers_held_out"] < MIN_SEGMENT_HELD_OUT:
                continue
            v, a, b = _err(est)
            labels.append(f"{seg.replace('_', ' ')}: {row['segment']}"), values.append(v), lo.append(a), hi.append(b)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.4), dpi=100)
    y = np.arange(len(labels))[::-1]
    colours = [COLOURS["model"] if v >= 0 else COLOURS["response"] for v in values]
    ax.barh(y, values, xerr=[lo, hi], color=colours, alpha=0.85, capsize=4, error_kw={"elinewidth": 1.2})
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, labels)
    ax.set_xlabel(f"incremental revenue per treated customer ({cur}), 95% interval")
    ax.set_title(f"Incremental revenue by group (treated vs holdout; groups with {MIN_SEGMENT_HELD_OUT}+ held out)")
    ax.grid(axis="x", alpha=0.3)
    return fig


def groups_figure(m: dict):
    """Revenue and margin per customer in each group (treated, other considered, held out)."""
    cur = m["economics"]["currency"]
    groups = m["groups"]
    names = [g for g in ("treated", "not_treated_not_held_out", "held_out") if groups[g]["customers"]]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    x = np.arange(len(names))
    for i, (k, colour) in enumerate((("revenue", COLOURS["treated"]), ("margin", COLOURS["held_out"]))):
        ax.bar(x + (i - 0.5) * 0.38, [groups[g][f"{k}_per_customer"] or 0 for g in names], 0.38, label=k, color=colour)
    ax.set_xticks(x, [f"{g.replace('_', ' ')}\n({groups[g]['customers']:,})" for g in names])
    ax.set_ylabel(f"per customer in the window ({cur})")
    ax.set_title("What each group spent")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def roi_per_offer_figure(m: dict):
    """ROI per offer (first offer of each treated customer) with 95% interval error bars."""
    rows = [r for r in m["offers"] if r["roi"]["value"] is not None and r["customers_treated"] >= MIN_OFFER_CUSTOMERS]
    rows = sorted(rows, key=lambda r: r["roi"]["value"])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.4 * max(len(rows), 1) + 1.4), dpi=100)
    if rows:
        y = np.arange(len(rows))
        vals = [_err(r["roi"]) for r in rows]
        ax.barh(y, [v[0] * 100 for v in vals], xerr=[[v[1] * 100 for v in vals], [v[2] * 100 for v in vals]],
                color=[COLOURS["model"] if v[0] >= 0 else COLOURS["response"] for v in vals], capsize=3, alpha=0.85)
        ax.set_yticks(y, [f"{r['offer_id']} ({r['customers_treated']:,} treated)" for r in rows])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("ROI (%), 95% interval; against the whole holdout (offers were not randomised)")
    ax.set_title(f"ROI per offer (offers sent to at least {MIN_OFFER_CUSTOMERS} customers)")
    ax.grid(axis="x", alpha=0.3)
    return fig


def gain_figure(m: dict, evaluation: dict | None):
    """Cumulative gain of the list's ranking (redemptions captured) and, with an uplift evaluation, the Qini
    curves of the uplift model and of the response model used as an uplift ranking."""
    n = 2 if evaluation else 1
    plt = _pyplot()
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 4.2), dpi=100, squeeze=False)
    ax = axes[0, 0]
    gain = m.get("gain_curve")
    if gain:
        ax.plot(gain["share"], gain["redemptions"], color=COLOURS["response"], label="list's ranking (P(redeem) x value)")
    ax.plot([0, 1], [0, 1], color=COLOURS["random"], linestyle="--", linewidth=1, label="random")
    ax.set_xlabel("share of treated customers, best ranked first")
    ax.set_ylabel("share of the campaign's redemptions")
    ax.set_title("Cumulative gain of the list")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if evaluation:
        ax = axes[0, 1]
        for name, colour in (("uplift", COLOURS["model"]), ("response", COLOURS["response"])):
            c = evaluation["curves"][name]
            ax.plot(c["share"], c["qini"], color=colour,
                    label=f"{name} model (Qini {evaluation['metrics'][name]['qini']:,.2f})")
        c = evaluation["curves"]["uplift"]
        ax.plot(c["share"], c["random"], color=COLOURS["random"], linestyle="--", linewidth=1, label="random")
        ax.set_xlabel("share of customer x offer rows targeted")
        ax.set_ylabel("incremental margin, net of reward cost")
        ax.set_title("Qini curves, out-of-time validation")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return fig


def _money(v, cur: str) -> str:
    return "n/a" if v is None else f"{v:,.2f} {cur}"


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:.0%}"


def counts_rows(m: dict) -> list[tuple[str, str]]:
    """The counts that add up: considered = with offers + excluded (by reason); held out among the excluded."""
    s = m.get("list_summary") or {}
    rows = []
    if s:
        rows.append(("customers considered by the list", f"{s['customers_considered']:,}"))
        rows.append(("customers with offers", f"{s['customers_with_offers']:,}"))
        for reason, n in (s.get("excluded_by_reason") or {}).items():
            rows.append((f"excluded: {reason.replace('_', ' ')}", f"{n:,}"))
        total = s["customers_with_offers"] + sum((s.get("excluded_by_reason") or {}).values())
        rows.append(("with offers + excluded", f"{total:,} ({'adds up' if total == s['customers_considered'] else 'DOES NOT add up'})"))
    rows.append(("measured: treated", f"{m['customers_treated']:,}"))
    rows.append(("measured: held out", f"{m['customers_held_out']:,}"))
    rows.append(("measured: considered, neither treated nor held out", f"{m['customers_not_treated_not_held_out']:,}"))
    rows.append(("measured: total", f"{m['customers_considered']:,}"))
    rows.append(("redemptions by the treated", f"{m['redemptions']:,}"))
    return rows


def render(m: dict, evaluation: dict | None = None) -> str:
    """The report page as one HTML string."""
    cur = m["economics"]["currency"]
    roi = m["roi"]
    rev = m["incremental_per_treated"]["revenue"]
    margin_total = m["incremental_margin_total"]
    charts = [
        ("chart-incremental", "Incremental revenue per group", incremental_by_group_figure(m)),
        ("chart-groups", "Spend per customer in each group", groups_figure(m)),
        ("chart-gain", "Cumulative gain and Qini curves", gain_figure(m, evaluation)),
        ("chart-roi-offers", "ROI per offer", roi_per_offer_figure(m)),
    ]
    e = html.escape
    counts = "".join(f"<tr><td>{e(k)}</td><td class='n'>{e(v)}</td></tr>" for k, v in counts_rows(m))
    figures = "".join(f"<section class='chart' id='{cid}'><h2>{e(title)}</h2>{_svg(fig)}</section>"
                      for cid, title, fig in charts)
    roi_text = (f"{_pct(roi['value'])}" if roi["value"] is not None else "n/a")
    roi_interval = (f"95% interval {_pct(roi['low'])} to {_pct(roi['high'])}" if roi["value"] is not None else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Campaign {e(m['campaign'])}: measured against the holdout</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #1a202c; }}
.headline {{ display: flex; gap: 1.5em; flex-wrap: wrap; }}
.card {{ border: 1px solid #cbd5e0; border-radius: 8px; padding: 0.8em 1.2em; min-width: 200px; }}
.card .big {{ font-size: 2em; font-weight: 600; }}
.verdict {{ background: #f7fafc; border-left: 4px solid #2b6cb0; padding: 0.6em 1em; }}
table {{ border-collapse: collapse; }} td {{ padding: 0.2em 0.8em; border-bottom: 1px solid #e2e8f0; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
.chart svg {{ max-width: 100%; height: auto; }}
</style></head><body>
<h1>Campaign <code>{e(m['campaign'])}</code></h1>
<p>As of {e(m['as_of'])}; sent {e(m['send_at'])}; measured over {m['window_days']} days
(to {e(m['window'][1])}); margin rate {m['economics']['gross_margin_rate']:.0%}, operating cost
{_money(m['economics']['operating_cost_per_month'], cur)} per month. Models: {e(', '.join(f'{k} v{v}' for k, v in m['model_versions'].items()))}.</p>
<div class="headline">
 <div class="card" id="headline-roi"><div>ROI</div><div class="big">{e(roi_text)}</div><div>{e(roi_interval)}</div></div>
 <div class="card"><div>incremental revenue per treated customer</div><div class="big">{e(_money(rev['value'], cur))}</div>
  <div>95% interval {e(_money(rev['low'], cur))} to {e(_money(rev['high'], cur))}</div></div>
 <div class="card"><div>incremental margin, all treated</div><div class="big">{e(_money(margin_total['value'], cur))}</div>
  <div>reward cost {e(_money(m['reward_cost'], cur))}, operating cost share {e(_money(m['operating_cost_share'], cur))}</div></div>
</div>
<p class="verdict" id="verdict">{e(m['verdict'])}</p>
{figures}
<section id="counts"><h2>The counts</h2><table>{counts}</table></section>
<p><small>Method: {e(m['method'])}.</small></p>
</body></html>
"""


def write_report(list_path: Path, evaluation_path: Path | None = None) -> Path:
    """Write ``<list>.report.html`` from the measurement beside the list; its path is returned."""
    from pipelines.io import atomic_path

    mpath = output_path(list_path, "measurement")
    if not mpath.exists():
        raise ReportError(f"no measurement at '{mpath}'; run `rewards measure --campaign {list_path}` first")
    m = json.loads(mpath.read_text())
    evaluation = None
    if evaluation_path is not None:
        try:
            evaluation = json.loads(Path(evaluation_path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ReportError(f"--evaluation '{evaluation_path}' is not a readable uplift evaluation: {err}") from None
    out = output_path(list_path, "report")
    with atomic_path(out) as tmp:
        tmp.write_text(render(m, evaluation))
    out.chmod(0o644)
    return out


def report_command(
    campaign: Path = typer.Option(..., "--campaign", help="The campaign list; its measurement must be beside it."),
    evaluation: Path | None = typer.Option(None, "--evaluation", help="uplift_evaluation.json from `rewards train uplift` (adds Qini curves)."),
) -> None:
    """Write <list>.report.html: ROI, incremental revenue per group, gain and Qini curves, ROI per offer, counts."""
    try:
        out = write_report(campaign, evaluation)
    except ReportError as err:
        typer.secho(f"rewards report: {err}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"report: {out}")
