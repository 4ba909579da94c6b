"""The HTML report in a real headless browser (Chromium driven by playwright), with the network blocked.

The browser is the system's Chromium (Debian's ``chromium`` package; ``scripts/check.sh`` installs it when
it runs as root); playwright's own browser download is never used. Without a browser these tests are
skipped, unless ``CLUSTERER_REQUIRE_BROWSER=1`` (set by ``check.sh`` once Chromium is there), in which
case a missing browser fails them. Screenshots go to ``$CLUSTERER_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from clusterer import synth
from clusterer.cli import app
from clusterer.report.html import build_report

REQUIRED = os.environ.get("CLUSTERER_REQUIRE_BROWSER") == "1"

# Prompts are attacker-controlled: each of these must show up in the report as text and never run.
PAYLOADS = (
    "<script>window.pwned='script'</script>",
    "<img src=x onerror=\"window.pwned='img'\">",
    "<a href=\"javascript:window.pwned='link'\">open the manual</a>",
    "</script><script>window.pwned='close-script'</script>",
    "</style><img src=x onerror=window.pwned='close-style'>",
    "--><svg onload=window.pwned='close-comment'></svg>",
    "\"'><b onmouseover=window.pwned='attribute'>hover</b>",
    "</title></textarea></pre>]]><iframe srcdoc='<script>parent.pwned=1</script>'></iframe>",
)

# what the page looks like to a script: injected elements, handlers, non-fragment links, the canary
PROBE = """() => ({
  pwned: window.pwned === undefined ? null : String(window.pwned),
  scripts: document.querySelectorAll('script').length,
  handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => /^on/i.test(a.name))).length,
  fetchers: document.querySelectorAll('img, iframe, object, embed, link, base, form, video, audio').length,
  links: [...document.querySelectorAll('[href]')].map(e => e.getAttribute('href')).filter(h => !h.startsWith('#')),
  title: document.title,
})"""


def _chromium() -> str | None:
    for name in (os.environ.get("CLUSTERER_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (path := shutil.which(name)):
            return path
    return None


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"CLUSTERER_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    exe = _chromium()
    if exe is None:
        _unavailable("no Chromium executable (apt-get install chromium, or set CLUSTERER_CHROMIUM)")
    with sync_playwright() as p:
        # --no-sandbox: CI containers run as root; the proxy is a dead end should anything try the network
        b = p.chromium.launch(
            executable_path=exe,
            args=["--no-sandbox", "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"],
        )
        yield b
        b.close()


@dataclass
class Visit:
    """One page load with everything the page tried: requests, console messages, errors, dialogs."""

    page: Any
    url: str
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    @property
    def console_errors(self) -> list[str]:
        return [t for kind, t in self.console if kind == "error"] + self.errors

    def go(self, fragment: str = "") -> None:
        self.page.goto(self.url + fragment)
        self.page.wait_for_load_state("load")


@pytest.fixture()
def visit(browser) -> Iterator[Any]:
    contexts = []

    def open_(path: Path, fragment: str = "") -> Visit:
        ctx = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
        contexts.append(ctx)
        url = path.resolve().as_uri()
        v = Visit(ctx.new_page(), url)

        def route(r: Any) -> None:
            if r.request.url.split("#")[0] == url:
                r.continue_()
            else:
                v.blocked.append(r.request.url)
                r.abort()

        ctx.route("**/*", route)
        v.page.on("request", lambda r: v.requests.append(r.url))
        v.page.on("console", lambda m: v.console.append((m.type, m.text)))
        v.page.on("pageerror", lambda e: v.errors.append(str(e)))

        def dialog(d: Any) -> None:
            v.dialogs.append(d.message)
            d.dismiss()

        v.page.on("dialog", dialog)
        v.go(fragment)
        return v

    yield open_
    for ctx in contexts:
        ctx.close()


def _shots(tmp_path: Path) -> Path:
    d = Path(os.environ.get("CLUSTERER_SCREENSHOTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_report_renders_offline_with_every_campaign(report_run, visit, tmp_path):
    report = build_report(report_run, tmp_path / "report.html").path
    clusters = pl.read_parquet(report_run / "clusters.parquet")
    flagged = clusters.filter(pl.col("flagged")).sort("campaign_score", descending=True)
    assert flagged.height >= 2
    v = visit(report)
    page = v.page

    # every flagged campaign ID in the rendered DOM, and in the visible overview table
    text = page.evaluate("() => document.body.textContent")
    table = page.locator("#flagged-table")
    for camp in flagged["campaign_id"]:
        assert camp in text
        assert table.get_by_text(camp, exact=True).is_visible()
    # the day's per-hour chart and the map are drawn and not empty
    bars = page.evaluate(
        "() => [...document.querySelectorAll('#overview svg.hours rect.bar')].filter(r => r.getBBox().height > 0)"
        ".length"
    )
    assert bars >= 20
    dots = page.evaluate(
        "() => [...document.querySelectorAll('#map svg path')].reduce((n, p) => n + (p.getAttribute('d') || '')"
        ".split('h0').length - 1, 0)"
    )
    box = page.locator("#map svg").bounding_box()
    assert dots >= 100 and box["width"] > 400 and box["height"] > 300
    assert page.locator("#map svg text.label").count() == flagged.height
    page.screenshot(path=str(_shots(tmp_path) / "overview.png"), full_page=True)

    # sorting and filtering work (the one inline script runs under the policy)
    page.locator("#unflagged-table th button", has_text="prompts").click()
    sizes = [int(t.replace(",", "")) for t in page.locator("#unflagged-table tbody td:nth-child(3)").all_inner_texts()]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) > 3
    page.locator("#flagged-table th button", has_text="prompts").click()
    page.locator("#flagged-table th button", has_text="prompts").click()
    shown = [int(t.replace(",", "")) for t in page.locator("#flagged-table tbody td:nth-child(3)").all_inner_texts()]
    assert shown == sorted(shown)
    camp = flagged["campaign_id"][0]
    page.fill('input[data-filter="flagged-table"]', camp)
    assert page.locator("#flagged-table tbody tr:visible").count() == 1
    assert page.locator("#flagged-count").inner_text() == f"1 of {flagged.height}"

    # one campaign's page: reached by its link, overview hidden, its hour chart drawn
    page.fill('input[data-filter="flagged-table"]', "")
    page.locator("#flagged-table a", has_text=camp).click()
    cid = int(flagged["cluster_id"][0])
    section = page.locator(f"#c{cid}")
    assert section.is_visible() and not page.locator("#overview").is_visible()
    assert camp in section.locator("h1").inner_text()
    bars = page.evaluate(
        f"() => [...document.querySelectorAll('#c{cid} svg.hours rect.bar')].filter(r => r.getBBox().height > 0).length"
    )
    assert bars >= 10
    assert section.locator("pre.template mark.slot").count() >= 1
    assert section.locator("pre.exemplar").count() == 5
    assert section.locator("svg.ages rect.bar").count() == 6
    page.screenshot(path=str(_shots(tmp_path) / "campaign.png"), full_page=True)

    # nothing left the page, nothing failed
    assert v.requests == [v.url], v.requests
    assert v.blocked == [] and v.console_errors == [] and v.dialogs == []
    assert page.evaluate("() => performance.getEntriesByType('resource').length") == 0


def _payload_day(seed: int = 3) -> pl.DataFrame:
    """Synthetic traffic plus a campaign whose scaffold, account IDs, prompt IDs and organisation carry
    every payload; the campaign is big and spread enough to be flagged, so it gets its own page."""
    traffic, _ = synth.fake_day(seed=seed, n_benign=300, campaign_sizes=(80,))
    rng = np.random.default_rng(seed)
    scaffold = (
        "You grade answers. " + " ".join(PAYLOADS) + " Read the answer below, grade it from one to ten, "
        "explain the grade in two sentences and return JSON.\n\nAnswer: {p}"
    )
    words = "apple river garden window market engine planet silver forest music bridge candle winter".split()
    n = 90
    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    inj = pl.DataFrame(
        {
            "prompt_id": [f"inj-{i:03d}" + (PAYLOADS[1] if i % 9 == 0 else "") for i in range(n)],
            "account_id": [f"{PAYLOADS[1]}-{i % 15:02d}" for i in range(n)],
            "timestamp": [start + dt.timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, 86_400, n))],
            "text": [scaffold.format(p=" ".join(rng.choice(words, int(rng.integers(6, 20))))) for _ in range(n)],
        }
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("us", "UTC")))
    day = pl.concat([traffic, inj])
    hostile = pl.col("account_id").str.starts_with("<")
    return day.with_columns(
        pl.when(hostile).then(pl.lit(PAYLOADS[0])).otherwise(pl.lit("org-") + pl.col("account_id")).alias("org_id"),
        pl.when(hostile)
        .then(pl.col("timestamp") - pl.duration(days=2))
        .otherwise(pl.lit(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)))
        .alias("account_created_at"),
    )


def test_injected_markup_never_executes(visit, tmp_path):
    logs = tmp_path / "day.parquet"
    _payload_day().write_parquet(logs)
    out = tmp_path / "out"
    args = ["run", str(logs), "--out", str(out), "--model", "hashing", "--cache-dir", "none", "--device", "cpu"]
    res = CliRunner().invoke(app, [*args, "--report", "-q"])
    assert res.exit_code == 0, res.output
    clusters = pl.read_parquet(out / "clusters.parquet")
    hostile = clusters.filter(pl.col("template").str.contains("window.pwned", literal=True) & pl.col("flagged"))
    assert hostile.height == 1, "the payload campaign must be flagged to get a page"
    cid = int(hostile["cluster_id"][0])

    v = visit(out / "report.html")
    for fragment in ("", f"#c{cid}"):
        v.go(fragment)
        seen = v.page.evaluate(PROBE)
        assert seen["pwned"] is None, seen
        assert seen["scripts"] == 1 and seen["handlers"] == 0 and seen["fetchers"] == 0 and seen["links"] == []
        assert seen["title"].startswith("clusterer report")
    # hover and click everything a payload could have become
    section = v.page.locator(f"#c{cid}")
    for el in section.locator("pre, td, .exemplar-meta").all()[:40]:
        el.hover()
    section.locator("pre.template").click()
    assert v.page.evaluate(PROBE)["pwned"] is None
    # ...and every payload is there as visible text: escaped, not dropped
    body = section.inner_text()
    for p in PAYLOADS:
        assert p in body, p
    assert PAYLOADS[1] in v.page.locator(f"#c{cid} table").first.inner_text() or PAYLOADS[1] in body
    assert set(v.requests) == {v.url} and v.blocked == [] and v.console_errors == [] and v.dialogs == []


def test_policy_blocks_markup_that_escaping_missed(report_run, visit, tmp_path):
    """Defence in depth: markup spliced into the page after rendering is refused by the CSP, and the
    same markup without the policy does run (the probe can see an execution)."""
    html = build_report(report_run, tmp_path / "report.html", map_points=200).path.read_text(encoding="utf-8")
    spliced = "".join(PAYLOADS[:3]) + "<img src=x onerror=\"window.pwned='img2'\">"
    bad = tmp_path / "spliced.html"
    bad.write_text(html.replace("</main>", spliced + "</main>"), encoding="utf-8")
    v = visit(bad)
    assert v.page.evaluate(PROBE)["pwned"] is None
    violations = [e for e in v.console_errors if "Content Security Policy" in e]
    assert len(violations) >= 2  # the inline script and the inline handler were refused
    # control: the same markup in a page without the policy executes and an image asks the network, so
    # the probe and the request log can tell
    plain = tmp_path / "plain.html"
    remote = "https://example.invalid/pixel.png"
    plain.write_text(f'<!doctype html><body>{PAYLOADS[0]}<img src="{remote}"></body>', encoding="utf-8")
    c = visit(plain)
    assert c.page.evaluate(PROBE)["pwned"] == "script"
    assert remote in c.requests and remote in c.blocked
