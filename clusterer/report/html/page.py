"""Render the report page: one Jinja2 template with autoescaping, one style sheet and one script inline.

Security model (prompts are attacker-controlled):
- every value from the run goes through Jinja2's autoescaping or :func:`markupsafe.escape` in the SVG
  builders; nothing from the logs lands in a URL, a script, a style or an event handler;
- the page carries a Content-Security-Policy that allows exactly the one inline style sheet and the one
  inline script by their SHA-256 hashes and nothing else: no other script (so no inline event handler
  and no ``javascript:`` URL runs), no request of any kind (``default-src 'none'``), no ``<base>``, no
  form submission, and Trusted Types so that the script cannot write HTML strings into the DOM.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

ASSETS = Path(__file__).with_name("assets")
SLOT = "{…}"


@cache
def asset(name: str) -> str:
    """The text of a bundled asset (style sheet, script, page template)."""
    return (ASSETS / name).read_text(encoding="utf-8")


def sha256_source(text: str) -> str:
    """A CSP hash source (``'sha256-…'``) for an inline element's exact text."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy(script: str, style: str) -> str:
    """The page's policy: its own inline script and style by hash, nothing else, no network."""
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src {sha256_source(script)}",
            f"style-src {sha256_source(style)}",
            "img-src 'none'",
            "font-src 'none'",
            "connect-src 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "require-trusted-types-for 'script'",
            "trusted-types 'none'",
        )
    )


def template_markup(text: str) -> Markup:
    """A rendered template with its ``{…}`` slots highlighted; every other character escaped."""
    parts = [escape(p) for p in text.split(SLOT)]
    return Markup('<mark class="slot">{…}</mark>').join(parts)


def _num(v: Any) -> str:
    if v is None:
        return "—"
    try:
        return f"{int(v):,}"
    except (TypeError, ValueError):
        return str(v)


def _fx(v: Any, digits: int = 2, sign: bool = False) -> str:
    if v is None or isinstance(v, bool):
        return "—" if v is None else str(v)
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if x != x:
        return "—"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _pct(v: Any) -> str:
    return "—" if v is None else f"{100 * float(v):.1f}%"


def _ts(v: Any) -> str:
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return "—" if v is None else str(v)


def span(first: Any, last: Any) -> str:
    """``HH:MM–HH:MM (x.y h)`` for a time span (dates added when it crosses a day)."""
    if not isinstance(first, dt.datetime) or not isinstance(last, dt.datetime):
        return "—"
    hours = (last - first).total_seconds() / 3600
    fmt = "%H:%M" if first.date() == last.date() else "%m-%d %H:%M"
    return f"{first:{fmt}}–{last:{fmt}} ({hours:.1f} h)"


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(ASSETS)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, fx=_fx, pct=_pct, ts=_ts)
    env.globals.update(span=span, template=template_markup)
    return env


def render(context: dict[str, Any]) -> str:
    """The whole page for ``context`` (see ``build_report``), with the inline assets and their CSP."""
    css, js = asset("report.css"), asset("report.js")
    # constants of this package, but a closing tag in them would end the element early
    assert "</style" not in css.lower() and "</script" not in js.lower()
    page = _environment().get_template("report.html.j2")
    return page.render(**context, css=Markup(css), js=Markup(js), csp=content_security_policy(js, css))
