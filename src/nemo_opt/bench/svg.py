"""Rendering of the benchmark report: bar charts as inline SVG, and the Markdown and HTML documents around them.

The page is one HTML file that renders offline. No plotting library: the charts are a few rectangles and labels,
and generating them here keeps the report free of JavaScript, external fonts and network requests. Every text
from data is escaped (XML/HTML in the page; Markdown metacharacters and raw HTML in the Markdown). Each chart
carries a ``<title>`` and ``<desc>`` (referenced by ``aria-labelledby``) for screen readers, and every bar its
own ``<title>`` with the exact value (a tooltip when hovered). Colours are the Okabe–Ito palette, which stays
distinguishable under the common colour-vision deficiencies; values are printed on the bars so no reading
depends on colour alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

__all__ = ["PALETTE", "Section", "Series", "Table", "grouped_bars", "render_html", "render_markdown", "stacked_bars"]

# Okabe & Ito (2008), "Color Universal Design"; black is left out (it is the text colour).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
_FONT = 'font-family="system-ui, sans-serif"'
_CHAR_WIDTH = 6.2  # rough width of one 11px sans-serif character, to decide whether a label fits


@dataclass(frozen=True)
class Series:
    """One coloured set of bars: a value (or None when unknown) per category."""

    name: str
    values: Sequence[float | None]


@dataclass
class Table:
    """A table of already formatted cells (escaped when rendered)."""

    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Section:
    """A report section: plain-text paragraphs, tables, and SVG charts (shown in the HTML page only)."""

    heading: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)


def _x(text: object) -> str:
    return escape(str(text), quote=True)


def _num(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _ident(title: str) -> str:
    """An id derived from the title, so several charts on one page do not share ids."""
    return "chart-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "untitled")


def _text_colour(fill: str) -> str:
    """Black or white, whichever reads better on ``fill`` (WCAG relative luminance)."""
    channels = [int(fill[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#000000" if luminance > 0.179 else "#ffffff"


def _ticks(maximum: float) -> list[float]:
    """About five round tick values from 0 up to at least ``maximum``."""
    if maximum <= 0:
        return [0.0, 1.0]
    raw = maximum / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [step * i for i in range(math.ceil(maximum / step - 1e-9) + 1)]


def _open(title: str, description: str, width: float, height: float) -> list[str]:
    ident = _ident(title)
    return [
        f'<svg role="img" aria-labelledby="{ident}-t {ident}-d" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" {_FONT} font-size="11">',
        f'<title id="{ident}-t">{_x(title)}</title>',
        f'<desc id="{ident}-d">{_x(description)}</desc>',
        f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
        f'<text x="10" y="18" font-size="14" font-weight="bold">{_x(title)}</text>',
    ]


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    parts = []
    for index, item in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        parts.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14:.1f}" y="{y:.1f}">{_x(item.name)}</text>')
        x += 30 + len(item.name) * _CHAR_WIDTH
    return parts


def grouped_bars(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "%",
    maximum: float | None = None,
    decimals: int = 1,
    description: str = "",
) -> str:
    """Vertical bars grouped by category, one colour per series, each value printed above its bar."""
    known = [v for s in series for v in s.values if v is not None]
    ticks = _ticks(maximum if maximum is not None else max(known, default=0.0))
    top_value = ticks[-1]
    bar, gap = 22.0, 26.0
    group = bar * max(1, len(series)) + gap
    left, top, plot_height, bottom = 56.0, 58.0, 200.0, 90.0
    width = max(left + group * len(categories) + 20, 80 + sum(30 + len(s.name) * _CHAR_WIDTH for s in series))
    height = top + plot_height + bottom
    parts = _open(title, description or title, width, height)
    parts += _legend(series, left, 40)
    base = top + plot_height
    for tick in ticks:
        y = base - plot_height * tick / top_value
        parts.append(f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{width - 10:.1f}" y2="{y:.1f}" stroke="#dddddd"/>')
        parts.append(f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{_num(tick, 0)}</text>')
    parts.append(f'<line x1="{left:.1f}" y1="{top:.1f}" x2="{left:.1f}" y2="{base:.1f}" stroke="#333333"/>')
    parts.append(f'<line x1="{left:.1f}" y1="{base:.1f}" x2="{width - 10:.1f}" y2="{base:.1f}" stroke="#333333"/>')
    axis_y = top + plot_height / 2
    parts.append(
        f'<text x="14" y="{axis_y:.1f}" text-anchor="middle" transform="rotate(-90 14 {axis_y:.1f})">{_x(unit)}</text>'
    )
    for c, category in enumerate(categories):
        x0 = left + gap / 2 + c * group
        for s, item in enumerate(series):
            value = item.values[c] if c < len(item.values) else None
            x = x0 + s * bar
            if value is None:
                parts.append(f'<text x="{x + bar / 2:.1f}" y="{base - 4:.1f}" text-anchor="middle">n/a</text>')
                continue
            h = plot_height * max(0.0, min(value, top_value)) / top_value
            label = f"{category}, {item.name}: {_num(value, decimals)}{unit if unit == '%' else ' ' + unit}"
            parts.append(
                f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[s % len(PALETTE)]}"><title>{_x(label)}</title></rect>'
            )
            parts.append(
                f'<text x="{x + bar / 2 - 1:.1f}" y="{base - h - 3:.1f}" text-anchor="middle" '
                f'font-size="9">{_num(value, decimals)}</text>'
            )
        middle = x0 + bar * len(series) / 2
        parts.append(
            f'<text x="{middle:.1f}" y="{base + 14:.1f}" text-anchor="end" '
            f'transform="rotate(-30 {middle:.1f} {base + 14:.1f})">{_x(category)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def stacked_bars(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    decimals: int = 0,
    description: str = "",
) -> str:
    """Horizontal bars, one per category, stacked by series; segment values inside, the total at the end."""
    totals = [sum(s.values[c] or 0.0 for s in series if c < len(s.values)) for c in range(len(categories))]
    ticks = _ticks(max(totals, default=0.0))
    top_value = ticks[-1]
    label_width = 12 + _CHAR_WIDTH * max((len(c) for c in categories), default=4)
    left, plot_width, row, top = max(90.0, label_width), 480.0, 28.0, 58.0
    width = max(left + plot_width + 70, 80 + sum(30 + len(s.name) * _CHAR_WIDTH for s in series))
    height = top + row * len(categories) + 40
    parts = _open(title, description or title, width, height)
    parts += _legend(series, 10, 40)
    base = top + row * len(categories)
    for tick in ticks:
        x = left + plot_width * tick / top_value
        parts.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{base:.1f}" stroke="#dddddd"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{base + 14:.1f}" text-anchor="middle">{_num(tick, 1 if tick % 1 else 0)}</text>'
        )
    parts.append(f'<line x1="{left:.1f}" y1="{top:.1f}" x2="{left:.1f}" y2="{base:.1f}" stroke="#333333"/>')
    parts.append(
        f'<line x1="{left:.1f}" y1="{base:.1f}" x2="{left + plot_width:.1f}" y2="{base:.1f}" stroke="#333333"/>'
    )
    if unit:
        parts.append(
            f'<text x="{left + plot_width / 2:.1f}" y="{base + 30:.1f}" text-anchor="middle">{_x(unit)}</text>'
        )
    for c, category in enumerate(categories):
        y = top + c * row + 4
        parts.append(f'<text x="{left - 6:.1f}" y="{y + row / 2:.1f}" text-anchor="end">{_x(category)}</text>')
        x = left
        for s, item in enumerate(series):
            value = item.values[c] if c < len(item.values) else None
            if not value:
                continue
            w = plot_width * value / top_value
            colour = PALETTE[s % len(PALETTE)]
            label = f"{category}, {item.name}: {_num(value, decimals)} {unit}".rstrip()
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{row - 8:.1f}" fill="{colour}" '
                f'stroke="#ffffff" stroke-width="0.5"><title>{_x(label)}</title></rect>'
            )
            text = _num(value, decimals)
            if w > len(text) * _CHAR_WIDTH + 4:
                parts.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + row / 2:.1f}" text-anchor="middle" '
                    f'fill="{_text_colour(colour)}">{text}</text>'
                )
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + row / 2:.1f}">{_num(totals[c], decimals)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _md(text: str) -> str:
    """Escape text for a Markdown table cell or paragraph: HTML, pipes, emphasis and line breaks."""
    text = escape(" ".join(text.split()), quote=False)
    for char in "\\`*_[]|":
        text = text.replace(char, "\\" + char)
    return text


def render_markdown(title: str, sections: list[Section]) -> str:
    """The report as GitHub-flavoured Markdown (tables only; the charts live in the HTML page)."""
    out = [f"# {_md(title)}", ""]
    for section in sections:
        out += [f"## {_md(section.heading)}", ""] + [p for para in section.paragraphs for p in (_md(para), "")]
        for table in section.tables:
            out += [f"**{_md(table.caption)}**", ""] if table.caption else []
            out += ["| " + " | ".join(_md(h) for h in table.headers) + " |", "|" + "---|" * len(table.headers)]
            out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in table.rows] + [""]
    out.append("Charts: see report.html.")
    return "\n".join(out) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#111}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem;font-size:0.9rem}caption{text-align:left;font-weight:bold}
th,td{border:1px solid #ccc;padding:0.25rem 0.5rem;text-align:left;vertical-align:top}th{background:#f2f2f2}
td.n{text-align:right;font-variant-numeric:tabular-nums}figure{margin:0 0 1.5rem;overflow-x:auto}"""


def _cell(text: str) -> str:
    """A table cell, right-aligned when it holds a number so columns of figures line up."""
    numeric = text.replace(",", "").replace(".", "", 1).lstrip("-").isdigit()
    return f'<td class="n">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>"


def render_html(title: str, sections: list[Section]) -> str:
    """The report as one HTML5 page: inline CSS and SVG, no scripts and no external resources."""
    out = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>",
        f"<h1>{escape(title)}</h1>",
    ]
    for section in sections:
        out.append(f"<section>\n<h2>{escape(section.heading)}</h2>")
        out += [f"<p>{escape(p)}</p>" for p in section.paragraphs]
        for table in section.tables:
            out.append("<table>" + (f"<caption>{escape(table.caption)}</caption>" if table.caption else ""))
            out.append(
                "<thead><tr>" + "".join(f'<th scope="col">{escape(h)}</th>' for h in table.headers) + "</tr></thead>"
            )
            out += (
                ["<tbody>"]
                + ["<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in table.rows]
                + ["</tbody></table>"]
            )
        out += [f"<figure>\n{chart}\n</figure>" for chart in section.charts]
        out.append("</section>")
    out.append("</main>\n</body>\n</html>\n")
    return "\n".join(out)
