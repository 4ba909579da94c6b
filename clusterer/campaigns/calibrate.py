"""Fit the campaign score's weights to analyst verdicts on past runs (``clusterer calibrate``).

Every run writes each family's evidence terms (``term_<name>`` in ``clusters.parquet``, see
:func:`clusterer.campaigns.score_terms`). Analysts confirm or reject families; a verdict file names them:

    run,campaign_id,verdict[,group]          or          run,cluster_id,verdict[,group]

``run`` is a run's output directory (relative to the verdict file or absolute); ``verdict`` is
``confirmed`` / ``rejected`` (also true/false, yes/no, 1/0, campaign/not); the optional ``group`` (what a
rejected family was: "legit customer", "shared prompt", ...) balances the fit so that each group weighs
the same within its class, however many families it holds. CSV, JSON lines or parquet.

The fit is a logistic regression of the verdict on the terms under constraints: each weight in
[0, ``max_weight``] (a term's direction is fixed by design); no single term can flag a family on its own;
and no single term of behaviour an operator can cheaply change (cover traffic, account age, organisation,
timing) can veto one on its own (with every other line of evidence at its strongest the family is still
flagged). A small L2 penalty keeps weights of uninformative terms near 0. The result is a
``[campaign]`` TOML table that ``clusterer run --config`` reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ..config import SCORE_TERMS, CampaignConfig
from ..errors import InputError
from ..io.artifacts import CLUSTERS

POSITIVE = {"confirmed", "confirm", "true", "yes", "1", "campaign", "tp"}
NEGATIVE = {"rejected", "reject", "false", "no", "0", "not", "not_campaign", "fp"}


@dataclass(frozen=True, slots=True)
class Verdicts:
    """Labelled families: ``terms`` float64 (m, len(SCORE_TERMS)), ``label`` bool (m,), ``prompts`` (m,),
    ``group`` per family ('' when not given), ``effective_accounts`` (m,), ``source`` the verdict files."""

    terms: NDArray[np.float64]
    label: NDArray[np.bool_]
    prompts: NDArray[np.float64]
    group: list[str]
    effective_accounts: NDArray[np.float64]
    source: list[str]


def _read_table(path: Path) -> pl.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        if path.suffix in (".jsonl", ".ndjson", ".json"):
            return pl.read_ndjson(path)
        return pl.read_csv(path, infer_schema_length=10_000)
    except FileNotFoundError as err:
        raise InputError(f"verdict file {path} does not exist") from err
    except Exception as err:  # noqa: BLE001 - any parse failure is the user's file
        raise InputError(f"verdict file {path} could not be read: {err}") from err


def load_verdicts(paths: list[Path]) -> Verdicts:
    """Read verdict files and join each verdict to its family's terms in the named run.

    Raises:
        InputError: missing columns, unknown verdict values, runs without terms, or IDs not in the run.
    """
    terms, labels, prompts, groups, eff, sources = [], [], [], [], [], []
    for path in paths:
        df = _read_table(Path(path))
        missing = [c for c in ("run", "verdict") if c not in df.columns]
        key = "campaign_id" if "campaign_id" in df.columns else "cluster_id" if "cluster_id" in df.columns else None
        if missing or key is None:
            raise InputError(
                f"{path}: needs columns run, verdict and campaign_id or cluster_id (has {', '.join(df.columns)})"
            )
        verdict = df["verdict"].cast(pl.String).str.strip_chars().str.to_lowercase()
        bad = ~(verdict.is_in(list(POSITIVE | NEGATIVE))).fill_null(True)
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())[:3].tolist()
            raise InputError(
                f"{path}: column 'verdict' must be confirmed or rejected (rows {rows}: "
                f"{df['verdict'].gather(rows).to_list()})"
            )
        df = df.with_columns(verdict.is_in(list(POSITIVE)).alias("_label"))
        if "group" not in df.columns:
            df = df.with_columns(pl.lit("").alias("group"))
        for run, part in df.group_by("run", maintain_order=True):
            run_dir = Path(str(run[0]))
            if not run_dir.is_absolute():
                run_dir = Path(path).parent / run_dir
            cl_path = run_dir / CLUSTERS
            if not cl_path.is_file():
                raise InputError(f"{path}: run {run[0]!r} has no clusters.parquet at {cl_path}")
            cl = pl.read_parquet(cl_path)
            need = [f"term_{t}" for t in SCORE_TERMS]
            if any(c not in cl.columns for c in need):
                raise InputError(f"{cl_path} has no score terms (term_* columns): re-run it with this version")
            cl = cl.with_columns(pl.col("cluster_id").cast(pl.Int64))
            part = part.with_columns(pl.col(key).cast(cl[key].dtype))
            joined = part.join(cl, on=key, how="left")
            lost = joined["size"].is_null()
            if lost.any():
                ids = joined[key].filter(lost).head(3).to_list()
                raise InputError(f"{path}: {int(lost.sum())} {key} value(s) not found in {cl_path} (e.g. {ids})")
            terms.append(joined.select(need).to_numpy().astype(np.float64))
            labels.append(joined["_label"].to_numpy())
            prompts.append(joined["size"].to_numpy().astype(np.float64))
            groups.extend(joined["group"].cast(pl.String).fill_null("").to_list())
            eff.append(joined["effective_accounts"].fill_null(0.0).to_numpy().astype(np.float64))
            sources.extend([str(path)] * joined.height)
    if not terms:
        raise InputError("no verdicts given")
    return Verdicts(
        np.concatenate(terms),
        np.concatenate(labels).astype(bool),
        np.concatenate(prompts),
        groups,
        np.concatenate(eff),
        sources,
    )


def _sample_weights(label: NDArray[np.bool_], prompts: NDArray[np.float64], group: list[str]) -> NDArray[np.float64]:
    """Each class weighs 1/2; within a class each group weighs the same; within a group each family
    counts sqrt(prompts) (big families matter more, but not linearly)."""
    w = np.sqrt(np.maximum(prompts, 1.0))
    out = np.zeros(len(w))
    for cls in (True, False):
        m = label == cls
        if not m.any():
            continue
        grp = np.array(group, dtype=object)[m]
        names = sorted(set(grp.tolist()))
        for g in names:
            gm = np.flatnonzero(m)[grp == g]
            out[gm] = w[gm] / w[gm].sum() / len(names) * 0.5
    return out


# behaviour an operator can change cheaply (cover traffic, older or bought accounts, one organisation,
# timing): none of these may veto a family on its own. What a family *is* — a varied slot, many accounts —
# costs the operator its purpose to change, and those terms are exempt from the no-veto rule.
EVADABLE = ("focus", "one_shot", "fresh", "one_org", "synchrony", "peaked", "crowded", "proxy", "rotation", "payment")
# the range of each term (campaigns.score_terms): the constraints below use its extremes
TERM_RANGE = {
    "variety": (-1.0, 1.0),
    "spread": (0.0, 1.0),
    "focus": (-1.0, 1.0),
    "one_shot": (-1.0, 0.0),
    "fresh": (-1.0, 1.0),
    "one_org": (-1.0, 0.0),
    "synchrony": (-1.0, 1.0),
    "peaked": (-1.0, 0.0),
    # network and payment evidence: an operator can rent residential proxies, pin an address per account or
    # pay with separate cards, so each is evadable
    "crowded": (0.0, 1.0),
    "proxy": (-1.0, 1.0),
    "rotation": (0.0, 1.0),
    "payment": (0.0, 1.0),
}


def _constraints(
    full: Callable[[NDArray[np.float64]], tuple[float, NDArray[np.float64]]],
    free: NDArray[np.bool_],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    margin: float,
) -> list[dict[str, Any]]:
    """SLSQP inequality constraints over the free parameters (``full``: parameters → (bias, every weight)):
    no free term flags alone at its highest value (by ``margin``), and no evadable term vetoes alone (every
    other term at its highest, it at its lowest, still flags)."""

    def no_flag_alone(p: NDArray[np.float64], t: int) -> float:
        b, w = full(p)
        return -(b + w[t] * hi[t]) - margin

    def no_veto_alone(p: NDArray[np.float64], others: NDArray[np.float64]) -> float:
        b, w = full(p)
        return float(b + w @ others)

    cons: list[dict[str, Any]] = []
    for t, name in enumerate(SCORE_TERMS):
        if free[t]:  # no flag alone (a fixed weight met this when its config was made)
            cons.append({"type": "ineq", "fun": no_flag_alone, "args": (t,)})
        if name in EVADABLE:
            others = np.where(np.arange(len(hi)) == t, lo, hi)
            cons.append({"type": "ineq", "fun": no_veto_alone, "args": (others,)})
    return cons


def fit_weights(
    v: Verdicts,
    max_weight: float = 3.0,
    l2: float = 1e-4,
    only: tuple[str, ...] | None = None,
    base: dict[str, float] | None = None,
) -> dict[str, float]:
    """Constrained logistic regression of the verdicts on the terms (see the module docstring): weights in
    [0, ``max_weight``]; no single term can flag alone (bias + w_t · max_t < 0 for every t); no single
    evadable term (EVADABLE) can veto alone (bias + Σ_{s≠t} w_s · max_s + w_t · min_t ≥ 0: with every other
    line of evidence at its strongest, the family is still flagged). Families below the score's
    effective-account gate are left out (they score 0 whatever the weights).

    With ``only`` (term names), only those terms' weights are fitted; the bias and every other weight stay
    as in ``base`` (:func:`current_weights` of a config), so families without evidence for the fitted terms
    (a log without their columns: the terms are 0) score exactly as before.

    Raises:
        InputError: one class only, an unknown term in ``only``, or no convergence.
    """
    from scipy.optimize import minimize

    free = np.ones(len(SCORE_TERMS), bool)
    fixed = np.zeros(len(SCORE_TERMS))
    if only is not None:
        unknown = sorted(set(only) - set(SCORE_TERMS))
        if unknown or base is None:
            raise InputError(f"--fit-only: unknown term(s) {unknown}; terms: {', '.join(SCORE_TERMS)}")
        free = np.array([t in only for t in SCORE_TERMS])
        fixed = np.array([0.0 if f else base[f"w_{t}"] for t, f in zip(SCORE_TERMS, free, strict=True)])
    gate = v.effective_accounts >= CampaignConfig().min_effective_accounts
    x, y = v.terms[gate], v.label[gate].astype(np.float64)
    if len(np.unique(y)) < 2:
        raise InputError("calibration needs both confirmed and rejected families (above the account gate)")
    sw = _sample_weights(y.astype(bool), v.prompts[gate], [g for g, k in zip(v.group, gate, strict=True) if k])
    lo = np.array([TERM_RANGE[t][0] for t in SCORE_TERMS])
    hi = np.array([TERM_RANGE[t][1] for t in SCORE_TERMS])
    margin = 0.05 * max_weight
    bias0 = base["bias"] if only is not None and base is not None else None

    def full(p: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        """(bias, every weight) from the free parameters."""
        w = fixed.copy()
        w[free] = p[1:]
        return (bias0 if bias0 is not None else p[0]), w

    def loss(p: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        b, w = full(p)
        z = b + x @ w
        nll = np.logaddexp(0.0, -z) * y + np.logaddexp(0.0, z) * (1.0 - y)
        g = (1.0 / (1.0 + np.exp(-z)) - y) * sw
        grad_b = 0.0 if bias0 is not None else g.sum()
        reg = p[1:] @ p[1:]
        return float((sw * nll).sum() + l2 * reg), np.r_[grad_b, x[:, free].T @ g + 2.0 * l2 * p[1:]]

    cons = _constraints(full, free, lo, hi, margin)
    bounds = [(-50.0, 0.0) if bias0 is None else (bias0, bias0)] + [(0.0, max_weight)] * int(free.sum())
    p0 = np.r_[-1.5 * max_weight if bias0 is None else bias0, np.full(int(free.sum()), max_weight / 2)]
    if bias0 is not None:  # start where every constraint holds: the base weights, free ones at 0
        p0[1:] = 0.0
    res = minimize(loss, p0, jac=True, bounds=bounds, constraints=cons, method="SLSQP", options={"maxiter": 500})
    if not res.success:
        raise InputError(f"calibration did not converge: {res.message}")
    b, w = full(res.x)
    out = {"bias": round(float(b), 3)}
    out.update({f"w_{t}": round(float(wt), 3) for t, wt in zip(SCORE_TERMS, w, strict=True)})
    return out


def operating_point(
    v: Verdicts, weights: dict[str, float], max_fpr: float, min_recall: float = 0.9, threshold: float = 0.5
) -> dict[str, float]:
    """Lower the bias until, on the verdicts, no group of rejected families has more than ``max_fpr`` of its
    prompts flagged — while prompt recall stays at least ``min_recall`` and no evadable term could veto
    alone. Log-loss weights rank families well; this sets where the line is drawn, since a false flag on a
    customer or a shared prompt costs more than a family caught one day later."""
    w = np.array([weights[f"w_{t}"] for t in SCORE_TERMS])
    gate = v.effective_accounts >= CampaignConfig().min_effective_accounts
    logit_thr = math.log(threshold / (1.0 - threshold))
    groups = np.array(v.group, dtype=object)
    neg_groups = sorted(set(groups[~v.label].tolist()))
    totals = {g: v.prompts[~v.label & (groups == g)].sum() for g in neg_groups}
    base = v.terms @ w
    best = dict(weights)
    for step in range(0, 201):
        b = weights["bias"] - 0.05 * step
        flag = gate & (b + base >= logit_thr)
        recall = (v.prompts * (flag & v.label)).sum() / max((v.prompts * v.label).sum(), 1.0)
        trial = {**weights, "bias": round(b, 3)}
        if recall < min_recall or any("veto" in p for p in check_weights(trial)):
            break
        best = trial
        worst = max(((v.prompts * (flag & ~v.label & (groups == g))).sum() / max(totals[g], 1.0)) for g in neg_groups)
        if worst <= max_fpr:
            break
    return best


def check_weights(weights: dict[str, float]) -> list[str]:
    """The bounds a weight set breaks: a term that could flag a family alone, or an evadable one that could
    veto it alone."""
    w = np.array([weights[f"w_{t}"] for t in SCORE_TERMS])
    lo = np.array([TERM_RANGE[t][0] for t in SCORE_TERMS])
    hi = np.array([TERM_RANGE[t][1] for t in SCORE_TERMS])
    b = weights["bias"]
    out = []
    for i, t in enumerate(SCORE_TERMS):
        if b + w[i] * hi[i] >= 0:
            out.append(f"{t} alone flags a family")
        if t in EVADABLE and b + w @ np.where(np.arange(len(w)) == i, lo, hi) < 0:
            out.append(f"{t} alone vetoes a family")
    return out


def evaluate(v: Verdicts, weights: dict[str, float], threshold: float = 0.5) -> dict[str, float]:
    """Precision / recall of the flag (score ≥ threshold) against the verdicts, by family and by prompt."""
    z = weights["bias"] + v.terms @ np.array([weights[f"w_{t}"] for t in SCORE_TERMS])
    flag = (1.0 / (1.0 + np.exp(-z)) >= threshold) & (v.effective_accounts >= CampaignConfig().min_effective_accounts)
    out: dict[str, float] = {}
    for name, w in (("families", np.ones(len(flag))), ("prompts", v.prompts)):
        tp = float((w * (flag & v.label)).sum())
        fp = float((w * (flag & ~v.label)).sum())
        fn = float((w * (~flag & v.label)).sum())
        out[f"{name}_precision"] = round(tp / (tp + fp), 4) if tp + fp else math.nan
        out[f"{name}_recall"] = round(tp / (tp + fn), 4) if tp + fn else math.nan
    return out


def current_weights(cfg: CampaignConfig) -> dict[str, float]:
    """The weights of a campaign config, in the shape :func:`fit_weights` returns."""
    return {"bias": cfg.bias, **{f"w_{t}": getattr(cfg, f"w_{t}") for t in SCORE_TERMS}}


def to_toml(weights: dict[str, float], comment: str) -> str:
    """A ``[campaign]`` table with the fitted weights."""
    lines = [f"# {line}" for line in comment.splitlines()] + ["[campaign]"]
    lines += [f"{k} = {v}" for k, v in weights.items()]
    return "\n".join(lines) + "\n"
