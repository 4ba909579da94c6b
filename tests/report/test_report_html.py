"""The HTML report without a browser: structure, CSP, escaping, bounded map, score terms, CLI commands."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from clusterer.cli import app
from clusterer.errors import InputError
from clusterer.report.html import build_report
from clusterer.report.html.data import day_profile, exemplar_rows, load_run
from clusterer.report.html.page import content_security_policy, template_markup
from clusterer.report.html.projection import layout, sample_points

runner = CliRunner()
PAYLOAD = '</pre></style></script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


class Page(HTMLParser):
    """Every start tag with its attributes, and the text of <script>, <style> and the CSP meta."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: dict[str, list[str]] = {"script": [], "style": []}
        self._in: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in self.inline:
            self._in = tag
            self.inline[tag].append("")

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in:
            self.inline[self._in][-1] += data
        else:
            self.text.append(data)

    @property
    def csp(self) -> str:
        metas = [a for t, a in self.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
        assert len(metas) == 1
        return metas[0]["content"] or ""


def parse(html: str) -> Page:
    p = Page()
    p.feed(html)
    return p


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.fixture(scope="module")
def report(report_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    res = build_report(report_run, out, map_points=400)
    return res, out.read_text(encoding="utf-8")


def test_report_is_one_file_with_a_strict_policy(report):
    res, html = report
    page = parse(html)
    assert res.bytes == len(html.encode()) and res.flagged >= 2
    # exactly one inline script and one style sheet, allowed by their hashes and nothing else
    assert len(page.inline["script"]) == 1 and len(page.inline["style"]) == 1
    csp = page.csp
    assert _hash(page.inline["script"][0]) in csp and _hash(page.inline["style"][0]) in csp
    assert "default-src 'none'" in csp and "unsafe" not in csp and "http" not in csp
    assert csp == content_security_policy(page.inline["script"][0], page.inline["style"][0])
    # nothing that fetches, no handler attributes, no style attributes, only in-page links
    for tag, attrs in page.tags:
        assert tag not in ("img", "iframe", "link", "object", "embed", "base", "form")
        assert not any(k.startswith("on") or k == "style" or k == "src" for k in attrs), (tag, attrs)
        if "href" in attrs:
            assert (attrs["href"] or "").startswith("#"), attrs
    assert not [a for t, a in page.tags if t == "script" and "src" in a]


def test_report_lists_and_pages_every_flagged_campaign(report, report_run):
    _, html = report
    page = parse(html)
    clusters = pl.read_parquet(report_run / "clusters.parquet")
    flagged = clusters.filter(pl.col("flagged"))
    table = [a for t, a in page.tags if t == "table" and a.get("id") == "flagged-table"]
    assert table
    sections = {a.get("id") for t, a in page.tags if t == "section"}
    text = "".join(page.text)
    for cid, camp in zip(flagged["cluster_id"], flagged["campaign_id"], strict=True):
        assert camp in text
        assert f"c{cid}" in sections
    # unflagged large families have pages too, biggest first
    biggest = clusters.filter(~pl.col("flagged")).sort("size", descending=True)["cluster_id"][0]
    assert f"c{biggest}" in sections
    # metadata sections: account ages and organisations (the fixture's day has both columns)
    assert "Account age at first prompt" in text and "Organisations" in text
    # exemplars were read back from the run's input file
    assert "Only the exemplar stored" not in text
    assert "Run manifest" in text and '"stages"' in text


def test_map_is_bounded_and_keeps_every_flagged_campaign(report_run):
    a = pl.read_parquet(report_run / "assignments.parquet")
    of_row = np.load(report_run / "vector_of_row.npy")
    flagged = pl.read_parquet(report_run / "clusters.parquet").filter(pl.col("flagged"))["cluster_id"].to_numpy()
    v, c, copies, distinct = sample_points(of_row, a["cluster_id"].to_numpy(), flagged, budget=120, seed=0)
    assert len(v) == 120 and distinct > 120
    assert set(flagged.tolist()) <= set(c.tolist())
    assert copies.min() >= 1 and copies.sum() <= (of_row >= 0).sum()
    # the same day with a bigger budget gives more points, never more than the distinct pairs
    v2, *_ = sample_points(of_row, a["cluster_id"].to_numpy(), flagged, budget=10**6, seed=0)
    assert len(v2) == distinct


def test_layout_places_non_landmarks_near_their_own_cluster():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 32))
    cluster = np.repeat(np.arange(6), 60)
    x = centres[cluster] + 0.05 * rng.normal(size=(len(cluster), 32))
    xy = layout(x, cluster, seed=0, landmarks=90)
    assert xy.shape == (360, 2) and xy.min() >= 0 and xy.max() <= 1
    centre = np.stack([xy[cluster == k].mean(axis=0) for k in range(6)])
    own = np.linalg.norm(xy - centre[cluster], axis=1)
    other = np.min(
        np.where(np.arange(6)[None, :] == cluster[:, None], np.inf, np.linalg.norm(xy[:, None] - centre[None], axis=2)),
        axis=1,
    )
    assert (own < other).mean() > 0.95


def _rewrite(run, **tables):
    """Replace tables of a copied run through the set's own amend path, so its manifest stays valid (the
    report checks the tables it shows against it)."""
    from clusterer.io import artifacts

    write = {f"{name}.parquet": df.write_parquet for name, df in tables.items()}
    artifacts.amend_set(run, write, lambda m: None, set(artifacts.KNOWN_FILES))


def test_contributions_are_rendered_largest_first_against_the_threshold(report_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(report_run, run)
    c = pl.read_parquet(run / "clusters.parquet")
    top = c["cluster_id"][0]
    terms = {"contrib_bias": -16.0, "contrib_focus": 11.5, "contrib_spread": 1.25, "contrib_one_org": -0.5}
    c = c.with_columns([pl.lit(0.0).alias(k) for k in c.columns if k.startswith("contrib_")])
    c = c.with_columns(
        [pl.when(pl.col("cluster_id") == top).then(pl.lit(v)).otherwise(pl.lit(0.0)).alias(k) for k, v in terms.items()]
    )
    _rewrite(run, clusters=c)
    html = (build_report(run, map_points=50).path).read_text(encoding="utf-8")
    section = re.search(rf'<section class="page" id="c{top}".*?</section>', html, re.S).group(0)
    svg = re.search(r'<svg class="chart terms".*?</svg>', section, re.S).group(0)
    names = re.findall(r'text-anchor="end">([a-z_]+)</text><rect', svg)
    assert names == ["bias", "focus", "spread", "one_org", "logit"]
    # -16 + 11.5 + 1.25 - 0.5 = -3.75, threshold logit(0.5) = 0: under by 3.75
    assert "Logit -3.75" in section and "under by 3.75" in section
    # a family without contributions still gets its raw features
    assert "raw features" not in section and "account_focus" in section


def test_report_without_inputs_falls_back_to_the_stored_exemplar(report_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(report_run, run)
    m = json.loads((run / "manifest.json").read_text())
    m["inputs"][0]["path"] = str(tmp_path / "moved.parquet")
    (run / "manifest.json").write_text(json.dumps(m))
    (run / "vectors.npy").unlink()
    html = build_report(run).path.read_text(encoding="utf-8")
    assert "Only the exemplar stored in clusters.parquet is shown" in html
    assert "no map" in html and '<svg class="chart map"' not in html


def test_huge_inputs_are_not_read_back(report_run, tmp_path, monkeypatch):
    from clusterer.report.html import data

    monkeypatch.setattr(data, "MAX_INPUT_BYTES", 1000)
    html = build_report(report_run, tmp_path / "r.html", map_points=0).path.read_text(encoding="utf-8")
    assert "too large to read back for exemplars" in html and "The map was left out" in html


def test_log_text_is_escaped_everywhere(report_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(report_run, run)
    c = pl.read_parquet(run / "clusters.parquet").with_columns(
        pl.lit(PAYLOAD + " {…} tail").alias("template"),
        pl.lit(PAYLOAD).alias("exemplar_text"),
        pl.when(pl.col("flagged")).then(pl.lit(PAYLOAD)).otherwise(None).alias("campaign_id"),
        pl.lit([PAYLOAD]).alias("tags"),
    )
    acc = pl.read_parquet(run / "accounts.parquet").with_columns(pl.lit(PAYLOAD) + pl.col("account_id"))
    a = pl.read_parquet(run / "assignments.parquet").with_columns(
        pl.lit(PAYLOAD) + pl.col("account_id"), (pl.lit(PAYLOAD) + pl.col("org_id")).alias("org_id")
    )
    _rewrite(run, clusters=c, accounts=acc, assignments=a)
    html = build_report(run, map_points=200).path.read_text(encoding="utf-8")
    page = parse(html)
    assert len(page.inline["script"]) == 1 and "pwned" not in page.inline["script"][0]
    assert not [t for t, _ in page.tags if t == "img"]
    assert not any(k.startswith("on") for _, attrs in page.tags for k in attrs)
    # the payload survives as text (escaped), in the tables, pages, map tooltips and organisations
    text = "".join(page.text)
    assert text.count(PAYLOAD) > 10
    assert html.count("&lt;script&gt;window.pwned=1&lt;/script&gt;") > 10


def test_template_slots_are_marked_and_text_escaped():
    out = str(template_markup("a <b> {…} & c {…}"))
    assert out == 'a &lt;b&gt; <mark class="slot">{…}</mark> &amp; c <mark class="slot">{…}</mark>'


def test_day_profile_and_exemplar_spread(report_run):
    run = load_run(report_run)
    day = day_profile(run)
    assert sum(day.total) == run.assignments.height and sum(day.flagged) == run.assignments["flagged"].sum()
    assert day.bin_hours == 1 and 24 <= len(day.total) <= 25
    cid = int(run.clusters.filter(pl.col("flagged"))["cluster_id"][0])
    ex = exemplar_rows(run, [cid], per_family=5)
    members = run.assignments.with_row_index("row").filter(pl.col("cluster_id") == cid).sort("timestamp", "row")
    # first and last prompt in time, three between, all distinct
    assert ex.height == 5 and ex["row"].n_unique() == 5
    assert ex["row"][0] == members["row"][0] and ex["row"][-1] == members["row"][-1]


def test_load_run_rejects_what_is_not_a_run(tmp_path):
    with pytest.raises(InputError, match="is not a directory"):
        load_run(tmp_path / "nope")
    (tmp_path / "clusters.parquet").write_bytes(b"")
    with pytest.raises(InputError, match=r"is not a finished clusterer run \(missing manifest.json"):
        load_run(tmp_path)


def test_cli_report_and_errors(report_run, tmp_path):
    out = tmp_path / "r" / "day.html"
    res = runner.invoke(app, ["report", str(report_run), "--out", str(out), "--map-points", "100"])
    assert res.exit_code == 0, res.output
    assert out.is_file() and "wrote" in res.output and "flagged campaigns" in res.output
    bad = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert bad.exit_code == 2 and "error:" in bad.output and "Traceback" not in bad.output
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = runner.invoke(app, ["report", str(empty)])
    assert bad.exit_code == 2 and "not a finished clusterer run" in bad.output


def test_show_campaign_prints_full_ids_on_a_narrow_terminal(report_run):
    clusters = pl.read_parquet(report_run / "clusters.parquet")
    camp = clusters.filter(pl.col("flagged"))["campaign_id"][0]
    res = runner.invoke(app, ["show", str(report_run), "--campaign", camp], env={"COLUMNS": "50"})
    assert res.exit_code == 0, res.output
    assert camp in res.output and "top accounts" in res.output and "template" in res.output
    accounts = pl.read_parquet(report_run / "accounts.parquet").filter(pl.col("campaigns").list.contains(camp))
    assert any(a in res.output for a in accounts["account_id"].to_list())
    # the family list keeps IDs whole too
    listing = runner.invoke(app, ["show", str(report_run), "--top", "5"], env={"COLUMNS": "80"})
    assert listing.exit_code == 0 and all(c in listing.output for c in clusters["campaign_id"].drop_nulls())
    # an unflagged family by its cluster number
    other = int(clusters.filter(~pl.col("flagged"))["cluster_id"][0])
    res = runner.invoke(app, ["show", str(report_run), "--campaign", str(other)])
    assert res.exit_code == 0 and f"cluster {other}" in res.output
    res = runner.invoke(app, ["show", str(report_run), "--campaign", "cmp-nope"])
    assert res.exit_code == 2 and "no campaign with ID 'cmp-nope'" in res.output and camp in res.output


def test_run_with_report_flag_and_registry(tmp_path):
    from pathlib import Path

    data = Path(__file__).resolve().parents[2] / "data" / "sample_day.parquet"
    out, reg = tmp_path / "out", tmp_path / "registry"
    args = ["run", str(data), "--out", str(out), "--model", "hashing", "--cache-dir", "none", "--device", "cpu"]
    res = runner.invoke(app, [*args, "--registry", str(reg), "--report", "-q"])
    assert res.exit_code == 0, res.output
    html = (out / "report.html").read_text(encoding="utf-8")
    flagged = pl.read_parquet(out / "clusters.parquet").filter(pl.col("flagged"))
    for cid, camp in zip(flagged["cluster_id"], flagged["campaign_id"], strict=True):
        assert camp in html
        section = re.search(rf'<section class="page" id="c{cid}".*?</section>', html, re.S).group(0)
        # the registry now knows the campaign: first seen today, one day
        assert "registry: days seen</dt><dd>1</dd>" in section and "registry: first seen</dt><dd>2026-11-02" in section


def test_history_columns_become_facts(report_run, tmp_path):
    import datetime as dt

    run = tmp_path / "run"
    shutil.copytree(report_run, run)
    c = pl.read_parquet(run / "clusters.parquet").with_columns(
        pl.lit(dt.date(2026, 10, 28)).alias("history_first_seen"),
        pl.lit(4, pl.UInt32).alias("history_days"),
        pl.lit(1234, pl.UInt64).alias("history_near_duplicates"),
        pl.lit("cmp-earlier").alias("history_campaign_id"),
    )
    _rewrite(run, clusters=c)
    html = build_report(run, map_points=50).path.read_text(encoding="utf-8")
    assert "History and registry" in html and "2026-10-28" in html and "cmp-earlier" in html
    assert "history: earlier days with near-duplicates</dt><dd>4</dd>" in html


def test_report_of_an_empty_day(tmp_path):
    from pathlib import Path

    empty = tmp_path / "empty.parquet"
    pl.read_parquet(Path(__file__).resolve().parents[2] / "data" / "sample_day.parquet").head(0).write_parquet(empty)
    out = tmp_path / "out"
    args = ["run", str(empty), "--out", str(out), "--model", "hashing", "--cache-dir", "none", "--device", "cpu"]
    res = runner.invoke(app, [*args, "--report", "-q"])
    assert res.exit_code == 0, res.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "No family of this day was flagged" in html and "No embedded prompt to map" in html


def test_the_map_of_one_repeated_vector_is_one_point_without_warnings():
    """A day of one repeated text gives identical vectors: the map puts them on one point (before, PCA divided
    by a zero variance and leaked a RuntimeWarning into the report command's output)."""
    import warnings

    from clusterer.report.html.projection import _tsne

    x = np.tile(np.eye(8, dtype=np.float32)[0], (60, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xy = _tsne(x, seed=0)
    assert xy.shape == (60, 2) and not xy.any()


def test_a_table_changed_or_cut_short_since_the_run_is_refused(report_run, tmp_path):
    """The report shows the tables the run wrote: one edited in place (a family marked flagged) or cut short
    is refused against the manifest, as `show` refuses it; a cut vectors file only drops the map."""
    from clusterer.errors import InputError

    run = tmp_path / "run"
    shutil.copytree(report_run, run)
    (run / "vectors.npy").write_bytes((run / "vectors.npy").read_bytes()[:1000])
    res = build_report(run, map_points=50)
    assert res.map_points == 0 and "No embedded prompt to map" in res.path.read_text(encoding="utf-8")
    pl.read_parquet(run / "clusters.parquet").with_columns(pl.lit(True).alias("flagged")).write_parquet(
        run / "clusters.parquet"
    )
    with pytest.raises(InputError, match="clusters.parquet does not match manifest.json"):
        build_report(run)
