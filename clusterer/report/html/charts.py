"""Inline SVG charts, written directly: no plotting library, no script, no style attributes.

Each function returns :class:`markupsafe.Markup`. Numbers are formatted here; every text that can come
from the logs (templates, IDs, term names) goes through :func:`markupsafe.escape`. Colours are SVG
presentation attributes or classes of the report's one style sheet, which the page's Content-Security-
Policy allows by hash (``style`` attributes would need ``'unsafe-inline'``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from markupsafe import Markup, escape
from numpy.typing import NDArray

from .projection import DayMap

# strong colours for flagged campaigns, muted ones for other families
FLAGGED_COLOURS = (
    "#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
)  # fmt: skip
OTHER_COLOURS = (
    "#b9cbe0", "#e3cdb4", "#bfdcb8", "#d5c6e0", "#e4c3c3", "#b9dcdc", "#dedbb2", "#cfc3b8", "#c3cfe8", "#d9c9d2",
)  # fmt: skip
NOISE_COLOUR = "#d4d4d4"


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * mag:
            return m * mag
    return 10 * mag


def _svg(width: int, height: int, cls: str, label: str, body: Sequence[str]) -> Markup:
    head = (
        f'<svg class="{cls}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
    )
    return Markup(head + "".join(body) + "</svg>")


def hour_chart(
    labels: Sequence[str],
    counts: Sequence[int],
    day: Sequence[int],
    flagged: Sequence[int] | None = None,
    label: str = "prompts per hour",
) -> Markup:
    """Bars of prompts per time bin.

    With ``flagged`` (the overview): all prompts, with the flagged share drawn over them. Otherwise (a
    family): the family's bars and the day's profile scaled to the family's total as a line, so the two
    shapes compare (a campaign runs flat or in shifts; ordinary traffic follows the day).
    """
    n = len(labels)
    width, height, left, bottom, top = 720, 170, 44, 26, 12
    if n == 0:
        return _svg(width, 40, "chart hours", label, ['<text x="8" y="24" class="muted">no timestamps</text>'])
    pw, ph = width - left - 8, height - bottom - top
    total, day_total = float(sum(counts)), float(sum(day))
    profile = [d * total / day_total for d in day] if flagged is None and day_total > 0 else []
    ymax = _nice_max(max([*counts, *profile, 1]))
    bw = pw / n

    def y(v: float) -> float:
        return top + ph - ph * v / ymax

    body = [
        f'<line class="axis" x1="{left}" y1="{_f(top + ph)}" x2="{left + pw}" y2="{_f(top + ph)}"/>',
        f'<line class="grid" x1="{left}" y1="{top}" x2="{left + pw}" y2="{top}"/>',
        f'<text class="tick" x="{left - 4}" y="{top + 4}" text-anchor="end">{ymax:,.0f}</text>',
        f'<text class="tick" x="{left - 4}" y="{_f(top + ph)}" text-anchor="end">0</text>',
    ]
    for i, c in enumerate(counts):
        x = left + i * bw
        tip = f"{labels[i]}: {c:,} prompts"
        if flagged is not None:
            tip += f", {flagged[i]:,} flagged"
        elif day_total:
            tip += f" (day: {day[i]:,})"
        body.append(
            f'<rect class="bar" x="{_f(x + 0.5)}" y="{_f(y(c))}" width="{_f(max(bw - 1, 0.5))}" '
            f'height="{_f(ph * c / ymax)}"><title>{escape(tip)}</title></rect>'
        )
        if flagged is not None and flagged[i]:
            body.append(
                f'<rect class="bar flag" x="{_f(x + 0.5)}" y="{_f(y(flagged[i]))}" width="{_f(max(bw - 1, 0.5))}" '
                f'height="{_f(ph * flagged[i] / ymax)}"><title>{escape(tip)}</title></rect>'
            )
    if profile:
        pts = " ".join(f"{_f(left + (i + 0.5) * bw)},{_f(y(p))}" for i, p in enumerate(profile))
        body.append(f'<polyline class="profile" points="{pts}"/>')
    step = max(1, math.ceil(n / 12))
    for i in range(0, n, step):
        body.append(
            f'<text class="tick" x="{_f(left + (i + 0.5) * bw)}" y="{height - 8}" '
            f'text-anchor="middle">{escape(labels[i])}</text>'
        )
    return _svg(width, height, "chart hours", label, body)


def waterfall(terms: Sequence[tuple[str, float]], threshold: float | None, label: str = "score terms") -> Markup:
    """Each term's contribution to the campaign logit, added in order from 0, against the threshold.

    A bar runs from the running sum before the term to the sum after it (right = towards a campaign);
    the last row is the total; a dashed line marks the threshold logit.
    """
    row, left, right = 22, 170, 70
    width = 720
    n = len(terms)
    height = (n + 1) * row + 30
    run = np.concatenate([[0.0], np.cumsum([v for _, v in terms])]) if n else np.zeros(1)
    lo = min(float(run.min()), 0.0, threshold if threshold is not None else 0.0)
    hi = max(float(run.max()), 0.0, threshold if threshold is not None else 0.0)
    pad = (hi - lo) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad
    pw = width - left - right

    def x(v: float) -> float:
        return left + pw * (v - lo) / (hi - lo)

    body = [f'<line class="axis" x1="{_f(x(0))}" y1="4" x2="{_f(x(0))}" y2="{height - 22}"/>']
    for i, (name, v) in enumerate(terms):
        a, b = run[i], run[i + 1]
        y0 = 6 + i * row
        cls = "pos" if v >= 0 else "neg"
        body.append(
            f'<text class="tick" x="{left - 6}" y="{y0 + 14}" text-anchor="end">{escape(name)}</text>'
            f'<rect class="{cls}" x="{_f(min(x(a), x(b)))}" y="{y0 + 3}" width="{_f(max(abs(x(b) - x(a)), 1))}" '
            f'height="{row - 6}"><title>{escape(name)}: {v:+.2f} (running total {b:+.2f})</title></rect>'
            f'<text class="tick" x="{width - right + 6}" y="{y0 + 14}">{v:+.2f}</text>'
        )
    total = float(run[-1])
    yt = 6 + n * row
    body.append(
        f'<text class="tick strong" x="{left - 6}" y="{yt + 14}" text-anchor="end">logit</text>'
        f'<rect class="total" x="{_f(min(x(0), x(total)))}" y="{yt + 3}" width="{_f(max(abs(x(total) - x(0)), 1))}" '
        f'height="{row - 6}"><title>total {total:+.2f}</title></rect>'
        f'<text class="tick strong" x="{width - right + 6}" y="{yt + 14}">{total:+.2f}</text>'
    )
    if threshold is not None:
        body.append(
            f'<line class="threshold" x1="{_f(x(threshold))}" y1="2" x2="{_f(x(threshold))}" y2="{height - 22}"/>'
            f'<text class="tick" x="{_f(x(threshold))}" y="{height - 8}" text-anchor="middle">'
            f"threshold {threshold:+.2f}</text>"
        )
    return _svg(width, height, "chart terms", label, body)


def bar_list(items: Sequence[tuple[str, int]], label: str) -> Markup:
    """Vertical bars for a few labelled counts (account ages)."""
    width, height, bottom, top = 420, 150, 34, 14
    n = max(len(items), 1)
    bw = (width - 20) / n
    ymax = _nice_max(max([c for _, c in items] + [1]))
    ph = height - bottom - top
    body = [f'<line class="axis" x1="10" y1="{top + ph}" x2="{width - 10}" y2="{top + ph}"/>']
    for i, (name, c) in enumerate(items):
        x = 10 + i * bw
        h = ph * c / ymax
        body.append(
            f'<rect class="bar" x="{_f(x + 3)}" y="{_f(top + ph - h)}" width="{_f(bw - 6)}" height="{_f(h)}">'
            f"<title>{escape(name)}: {c:,}</title></rect>"
            f'<text class="tick" x="{_f(x + bw / 2)}" y="{_f(top + ph - h - 3)}" text-anchor="middle">{c:,}</text>'
            f'<text class="tick" x="{_f(x + bw / 2)}" y="{height - 12}" text-anchor="middle">{escape(name)}</text>'
        )
    return _svg(width, height, "chart ages", label, body)


def day_map_svg(
    day_map: DayMap,
    tips: dict[int, str],
    labels: dict[int, str],
    flagged_order: Sequence[int],
    anchors: dict[int, str],
    max_labels: int = 30,
) -> Markup:
    """Scatter of the sampled day, one group per cluster (its tooltip), flagged campaigns labelled.

    ``tips``: cluster → tooltip text; ``labels``: cluster → label drawn on the map (campaign IDs);
    ``flagged_order``: flagged clusters, highest score first (their colours and label order);
    ``anchors``: cluster → fragment of its page (points and labels link there).
    """
    width, height, pad = 900, 620, 14
    xs = pad + day_map.xy[:, 0] * (width - 2 * pad)
    ys = pad + (1 - day_map.xy[:, 1]) * (height - 2 * pad)
    # a dot's size says how many prompts share its vector: 1, 2-9, 10-99, 100+
    size_class = np.minimum(np.floor(np.log10(np.maximum(day_map.copies, 1)) + (day_map.copies > 1)), 3).astype(int)
    rank = {c: i for i, c in enumerate(flagged_order)}
    body: list[str] = []

    def dots(sel: NDArray[np.int64], base: float) -> str:
        # one path per dot size: zero-length round-capped segments draw as dots, ~15 bytes each
        out = []
        for k in np.unique(size_class[sel]).tolist():
            d = "".join(f"M{_f(xs[i])} {_f(ys[i])}h0" for i in sel[size_class[sel] == k])
            out.append(f'<path d="{d}" stroke-width="{_f(base + 1.6 * k)}"/>')
        return "".join(out)

    counts = dict(zip(*np.unique(day_map.cluster, return_counts=True), strict=True))
    # a family of its own group (tooltip, link) when flagged, paged or with >= 3 sampled points; the long
    # tail of one- or two-point families of a big day shares one group per colour
    own = [c for c in counts if c in rank or c in anchors or (c >= 0 and counts[c] >= 3)]
    tail = np.isin(day_map.cluster, [c for c in counts if c >= 0 and c not in own])
    for k, colour in enumerate(OTHER_COLOURS):
        sel = np.flatnonzero(tail & (day_map.cluster % len(OTHER_COLOURS) == k))
        if len(sel):
            n_fam = len(np.unique(day_map.cluster[sel]))
            body.append(
                f'<g class="pts tail" stroke="{colour}"><title>one of {n_fam:,} small families '
                f"(1–2 sampled points each)</title>{dots(sel, 3.2)}</g>"
            )
    if -1 in counts:
        sel = np.flatnonzero(day_map.cluster == -1)
        body.append(f'<g class="pts noise" stroke="{NOISE_COLOUR}"><title>noise</title>{dots(sel, 2.6)}</g>')
    # other families, then flagged campaigns on top
    for c in sorted([c for c in own if c >= 0], key=lambda c: (c in rank, -rank.get(c, 0), c)):
        sel = np.flatnonzero(day_map.cluster == c)
        if c in rank:
            colour, base, cls = FLAGGED_COLOURS[rank[c] % len(FLAGGED_COLOURS)], 4.0, "pts flagged"
        else:
            colour, base, cls = OTHER_COLOURS[c % len(OTHER_COLOURS)], 3.2, "pts"
        tip = escape(tips.get(c, f"cluster {c}"))
        group = f'<g class="{cls}" stroke="{colour}" data-cluster="{c}"><title>{tip}</title>{dots(sel, base)}</g>'
        body.append(f'<a href="#{anchors[c]}">{group}</a>' if c in anchors else group)
    placed: list[tuple[float, float, float, float]] = []
    for c in list(flagged_order)[:max_labels]:
        sel = np.flatnonzero(day_map.cluster == c)
        if len(sel) == 0:
            continue
        x, y = float(np.median(xs[sel])), float(np.median(ys[sel]))
        name = labels.get(c, f"cluster {c}")
        w = 6.8 * len(name) + 4
        anchor = "end" if x > width * 0.7 else "start"
        x0 = x - 6 - w if anchor == "end" else x + 6
        # greedy: the first vertical offset at which the label overlaps no label placed before it
        for dy in (0, 14, -14, 28, -28, 42, -42, 56, -56, 70, -70):
            ly = min(max(y - 6 + dy, 12), height - 4)
            box = (x0, ly - 11, x0 + w, ly + 2)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
        placed.append(box)
        lx = x - 6 if anchor == "end" else x + 6
        text = f'<line class="leader" x1="{_f(x)}" y1="{_f(y)}" x2="{_f(lx)}" y2="{_f(ly - 4)}"/>' if dy else ""
        text += f'<text class="label" x="{_f(lx)}" y="{_f(ly)}" text-anchor="{anchor}">{escape(name)}</text>'
        body.append(f'<a href="#{anchors[c]}">{text}</a>' if c in anchors else text)
    return _svg(width, height, "chart map", "2-D map of the day's prompts, coloured by cluster", body)
