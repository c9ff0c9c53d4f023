"""HTML pieces of the report: tables, embedded images, sections, the page.

The page is one file with everything inside it: charts are PNGs in ``data:`` URIs, the
style sheet is inline, there is no script. It opens without a network and prints (each
section starts a page; tables and charts are not split).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from importlib import resources
from string import Template

import numpy as np
import pandas as pd

MISSING = "–"
COUNT, MONEY, SHARE, RATE, RATIO, DATE, MONTH = (
    "{:,.0f}",
    "{:,.0f}",
    "{:.1%}",
    "{:.2%}",
    "{:.3f}",
    "%Y-%m-%d",
    "%Y-%m",
)


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def cell(value: object, spec: str | None) -> str:
    """One value in words: a format spec for numbers, a strftime pattern for dates."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return MISSING
    if value is pd.NaT:
        return MISSING
    if spec and "%" in spec and not spec.startswith("{"):
        return pd.Timestamp(value).strftime(spec)
    if spec:
        return spec.format(value)
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    return str(value)


def table(
    frame: pd.DataFrame,
    columns: Mapping[str, tuple[str, str | None]],
    flag: Sequence[bool] | None = None,
    words: Sequence[str] = (),
) -> str:
    """``columns``: frame column -> (header, format). ``flag`` marks rows to read with care;
    ``words`` are columns of sentences, which may wrap (every other cell stays on one line)."""
    numeric = {
        name: spec is not None and spec.startswith("{") for name, (_, spec) in columns.items()
    }
    head = "".join(
        f'<th class="num">{escape(h)}</th>' if numeric[n] else f"<th>{escape(h)}</th>"
        for n, (h, _) in columns.items()
    )
    rows = []
    marks = list(flag) if flag is not None else [False] * len(frame)
    for mark, record in zip(marks, frame[list(columns)].itertuples(index=False), strict=True):
        cells = "".join(
            f"<td{_class(n, numeric, words)}>{escape(cell(v, spec))}</td>"
            for (n, (_, spec)), v in zip(columns.items(), record, strict=True)
        )
        rows.append(f'<tr class="flag">{cells}</tr>' if mark else f"<tr>{cells}</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _class(name: str, numeric: Mapping[str, bool], words: Sequence[str]) -> str:
    if numeric[name]:
        return ' class="num"'
    return ' class="words"' if name in words else ""


def image(png: bytes, alt: str, caption: str = "") -> str:
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    text = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{source}" alt="{escape(alt)}">{text}</figure>'


def paragraph(text: str, note: bool = False) -> str:
    return f'<p class="note">{escape(text)}</p>' if note else f"<p>{escape(text)}</p>"


def facts(items: Mapping[str, str]) -> str:
    """Headline figures as tiles: value over label."""
    tiles = "".join(
        f"<li><b>{escape(value)}</b><span>{escape(label)}</span></li>"
        for label, value in items.items()
    )
    return f'<ul class="facts">{tiles}</ul>'


def heading(text: str) -> str:
    return f"<h3>{escape(text)}</h3>"


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]], footer: str) -> str:
    """The whole document from (anchor, title, body HTML) triples."""
    template = Template(
        resources.files("training.report").joinpath("template.html").read_text(encoding="utf-8")
    )
    toc = "".join(f'<li><a href="#{a}">{escape(t)}</a></li>' for a, t, _ in sections)
    body = "\n".join(
        f'<section id="{a}"><h2>{escape(t)}</h2>\n{content}</section>' for a, t, content in sections
    )
    return template.substitute(
        title=escape(title),
        subtitle=escape(subtitle),
        toc=toc,
        sections=body,
        footer=escape(footer),
    )
