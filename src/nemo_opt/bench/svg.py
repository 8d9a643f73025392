"""Rendering of the benchmark report: bar charts as inline SVG (matplotlib), and the Markdown and HTML around them.

The page is one HTML file that renders offline: matplotlib's SVG backend draws each chart, with text kept as
text (``svg.fonttype = none``) so labels can be read, searched and copied, and the SVG is inlined in the page
without its XML prologue. Every text from data is escaped (XML/HTML in the page; Markdown metacharacters and
raw HTML in the Markdown; matplotlib's mathtext is off, so a ``$`` in a run name is a dollar sign). Each chart
carries a ``<title>`` and ``<desc>`` (referenced by ``aria-labelledby``) for screen readers, and every bar its own
``<title>`` with the exact value (a tooltip when hovered). Colours are the Okabe–Ito palette, which stays
distinguishable under the common colour-vision deficiencies; values are printed on the bars so no reading
depends on colour alone, and the figure is widened until no two value labels overlap.

matplotlib is the optional ``report`` extra, not core: benchmarks/dependency_cost.py measured 96.6 MB installed
with the packages only it needs (fonttools 29.5, pillow 21.9, matplotlib 36.4), a quarter more than the whole
406 MB core install, for a page only benchmark runs make; importing it takes 0.4 to 0.9 s and a chart about
0.4 s on the 2-core development machine, paid by ``nemo-opt bench report`` alone. Without it
:func:`grouped_bars` and :func:`stacked_bars` raise :class:`~nemo_opt.exceptions.MissingExtra`, and the page
keeps its tables and says, where each chart would be, how to get the charts.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

from nemo_opt.exceptions import MissingExtra

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PALETTE", "Section", "Series", "Table", "grouped_bars", "render_html", "render_markdown", "stacked_bars"]

# Okabe & Ito (2008), "Color Universal Design"; black is left out (it is the text colour).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
_RC = {
    "svg.fonttype": "none",  # text stays <text>, not glyph outlines
    "svg.hashsalt": "nemo-opt",  # ids do not change from one run to the next
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#333333",
    "axes.titlesize": 11,
    "figure.titlesize": 12,
    "figure.titleweight": "bold",
    "xtick.major.size": 0,  # no tick marks: they would be <use href> elements; the grid shows the values
    "ytick.major.size": 0,
}
_WIDEN_ROUNDS = 12
_PAGE_WIDTH_IN = 11.0  # about the report page's width at 96 dpi
_LABEL_GAP_PX = 2.0


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
    """A report section: plain-text paragraphs, tables, and SVG charts (shown in the HTML page only).

    ``missing_charts`` holds (title, reason) of each chart that could not be drawn; the page says so where the
    chart would be.
    """

    heading: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)
    missing_charts: list[tuple[str, str]] = field(default_factory=list)

    def add_chart(self, title: str, draw: Callable[[str], str]) -> None:
        """Add the chart ``draw(title)`` makes, or, when it cannot be drawn, why and how to get it."""
        try:
            self.charts.append(draw(title))
        except MissingExtra as exc:
            self.missing_charts.append((title, str(exc)))


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


def _matplotlib() -> Any:
    try:
        import matplotlib
        import matplotlib.figure  # noqa: F401 (loads the submodule used through the package)
    except ImportError as exc:
        raise MissingExtra("matplotlib", "report", "Drawing the benchmark report's charts") from exc
    return matplotlib


def _overlapping(texts: Sequence[Any]) -> bool:
    """Whether any two of the drawn ``texts`` overlap (or come closer than a small gap)."""
    boxes = [t.get_window_extent().padded(_LABEL_GAP_PX / 2) for t in texts if t.get_text()]
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def _svg(figure: Figure, title: str, description: str, tooltips: dict[str, str]) -> str:
    """The figure as an SVG element for inlining: no prologue or namespaces, with title, desc and bar tooltips."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    root = ET.fromstring(buffer.getvalue())
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]
        for name in [n for n in element.attrib if n.startswith("{") and "XML/1998" not in n]:
            element.attrib[name.rpartition("}")[2]] = element.attrib.pop(name)  # xlink:href -> href (SVG 2)
    for parent in list(root.iter()):
        for child in [c for c in parent if c.tag == "metadata"]:
            parent.remove(child)
    ident = _ident(title)
    _scope_ids(root, ident)
    root.attrib.pop("version", None)
    root.set("id", ident)
    root.set("role", "img")
    root.set("aria-labelledby", f"{ident}-t {ident}-d")
    heading, desc = ET.Element("title", id=f"{ident}-t"), ET.Element("desc", id=f"{ident}-d")
    heading.text, desc.text = title, description or title
    root.insert(0, desc)
    root.insert(0, heading)
    for element in root.iter("g"):
        label = tooltips.get(element.get("id", ""))
        if label is not None:
            tip = ET.Element("title")
            tip.text = label
            element.insert(0, tip)
    return ET.tostring(root, encoding="unicode")


def _scope_ids(root: ET.Element, ident: str) -> None:
    """Prefix matplotlib's ids (figure_1, axes_1, clip paths...) with the chart's, so charts on one page differ,
    and scope its style sheet (``*{...}``, which inline would style the whole page) to the chart."""
    renamed: dict[str, str] = {}
    for element in root.iter():
        old = element.get("id")
        if old and not old.startswith(f"{ident}-"):
            renamed[old] = f"{ident}-{old}"
            element.set("id", renamed[old])

    def reference(match: re.Match[str]) -> str:
        return f"{match.group(1)}#{renamed.get(match.group(2), match.group(2))}"

    for element in root.iter():
        for name, value in list(element.attrib.items()):
            if "#" in value:
                element.set(name, re.sub(r"(url\(|^)#([^)\s]+)", reference, value))
        if element.tag == "style" and element.text:
            element.text = element.text.replace("*{", f"#{ident} *{{")


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
    matplotlib = _matplotlib()
    with matplotlib.rc_context(_RC):
        figure, tooltips = _grouped_figure(title, categories, series, unit, maximum, decimals)
        return _svg(figure, title, description, tooltips)


def _grouped_figure(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    unit: str,
    maximum: float | None,
    decimals: int,
) -> tuple[Figure, dict[str, str]]:
    """The figure of :func:`grouped_bars`, drawn and laid out, and the tooltip of each bar by its id."""
    matplotlib = _matplotlib()
    from matplotlib.ticker import MaxNLocator

    ident = _ident(title)
    known = [v for s in series for v in s.values if v is not None]
    top = maximum if maximum is not None else max(known, default=0.0) or 1.0
    per_group = max(1, len(series))
    width = 0.8 / per_group
    tooltips: dict[str, str] = {}
    with matplotlib.rc_context(_RC):
        bars_wide = 1.2 + 0.3 * per_group * len(categories)  # widened below if value labels would touch
        figure = matplotlib.figure.Figure(figsize=(min(_PAGE_WIDTH_IN, max(5.0, bars_wide)), 3.6))
        figure.set_layout_engine("constrained")
        axes = figure.add_subplot()
        labels = []
        for s, item in enumerate(series):
            values = [item.values[c] if c < len(item.values) else None for c in range(len(categories))]
            positions = [c - 0.4 + width * (s + 0.5) for c in range(len(categories))]
            heights = [max(0.0, min(v, top)) if v is not None else 0.0 for v in values]
            bars = axes.bar(positions, heights, width * 0.92, color=PALETTE[s % len(PALETTE)], label=item.name)
            for c, (bar, value) in enumerate(zip(bars, values, strict=True)):
                gid = f"{ident}-bar-{c}-{s}"
                bar.set_gid(gid)
                shown = "n/a" if value is None else _num(value, decimals)
                tooltips[gid] = f"{categories[c]}, {item.name}: {shown}{'' if value is None else _unit(unit)}"
            texts = ["n/a" if v is None else _num(v, decimals) for v in values]
            labels += axes.bar_label(bars, labels=texts, padding=2, fontsize=8)
        axes.set_xlim(-0.5, len(categories) - 0.5)
        axes.set_ylim(0, top * 1.12)  # room for the labels of the highest bars
        axes.set_yticks([t for t in MaxNLocator(nbins=5).tick_values(0, top) if 0 <= t <= top * 1.0001])
        axes.yaxis.grid(True, color="#dddddd")
        axes.set_axisbelow(True)
        axes.set_ylabel(unit)
        axes.set_xticks(range(len(categories)), list(categories), rotation=30, ha="right", rotation_mode="anchor")
        _title_and_legend(figure, axes, title, len(series))
        _widen_until_apart(figure, axes, labels, top)
    return figure, tooltips


def _unit(unit: str) -> str:
    return unit if unit == "%" else f" {unit}".rstrip()


def _title_and_legend(figure: Figure, axes: Any, title: str, entries: int) -> None:
    """The legend just above the plot, in as many columns as fit the figure's width; the title above it."""
    rows = 1
    for columns in range(max(1, min(entries, 8)), 0, -1):
        if entries:  # left out of the layout: the title's pad makes room for it, the loop fits its width
            legend = axes.legend(
                loc="lower left", bbox_to_anchor=(0, 1.0), ncols=columns, frameon=False, borderaxespad=0.2
            )
            legend.set_in_layout(False)
        rows = -(-entries // columns)
        axes.set_title(title, loc="left", fontweight="bold", pad=6 + 14 * rows)
        figure.draw_without_rendering()
        legend = axes.get_legend()
        if legend is None or legend.get_window_extent().x1 <= figure.bbox.width:
            return


def _widen_until_apart(figure: Figure, axes: Any, labels: Sequence[Any], top: float) -> None:
    """Make room until no two value labels overlap: widen the figure up to a page's width, then stand the labels
    upright, then widen further if even that is not enough."""
    for _ in range(_WIDEN_ROUNDS):
        figure.draw_without_rendering()
        if not _overlapping(labels):
            return
        if figure.get_figwidth() < _PAGE_WIDTH_IN:
            figure.set_figwidth(min(_PAGE_WIDTH_IN, figure.get_figwidth() * 1.3))
        elif labels and labels[0].get_rotation() != 90:
            for label in labels:
                label.set_rotation(90)
            axes.set_ylim(0, top * 1.35)  # upright labels need more room above the highest bars
        else:
            figure.set_figwidth(figure.get_figwidth() * 1.3)
    figure.draw_without_rendering()


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
    matplotlib = _matplotlib()
    ident = _ident(title)
    totals = [sum(s.values[c] or 0.0 for s in series if c < len(s.values)) for c in range(len(categories))]
    tooltips: dict[str, str] = {}
    with matplotlib.rc_context(_RC):
        figure = matplotlib.figure.Figure(figsize=(7.5, 1.3 + 0.38 * max(1, len(categories))))
        figure.set_layout_engine("constrained")
        axes = figure.add_subplot()
        rows = range(len(categories))
        left = [0.0] * len(categories)
        inside = []
        for s, item in enumerate(series):
            values = [(item.values[c] if c < len(item.values) else None) or 0.0 for c in rows]
            colour = PALETTE[s % len(PALETTE)]
            bars = axes.barh(
                list(rows), values, 0.7, left=left, color=colour, edgecolor="#ffffff", linewidth=0.5, label=item.name
            )
            for c, (bar, value) in enumerate(zip(bars, values, strict=True)):
                if value:
                    gid = f"{ident}-bar-{c}-{s}"
                    bar.set_gid(gid)
                    tooltips[gid] = f"{categories[c]}, {item.name}: {_num(value, decimals)} {unit}".rstrip()
            texts = [_num(v, decimals) if v else "" for v in values]
            for bar, text in zip(bars, axes.bar_label(bars, labels=texts, label_type="center"), strict=True):
                text.set_color(_text_colour(colour))
                inside.append((bar, text))
            left = [a + b for a, b in zip(left, values, strict=True)]
        for c, total in enumerate(totals):
            axes.annotate(_num(total, decimals), (total, c), xytext=(4, 0), textcoords="offset points", va="center")
        axes.set_xlim(0, (max(totals, default=0.0) or 1.0) * 1.1)
        axes.set_yticks(list(rows), list(categories))
        axes.invert_yaxis()  # first category on top
        axes.xaxis.grid(True, color="#dddddd")
        axes.set_axisbelow(True)
        if unit:
            axes.set_xlabel(unit)
        _title_and_legend(figure, axes, title, len(series))
        for bar, text in inside:  # a value that does not fit inside its segment is left to the tooltip
            if text.get_text() and text.get_window_extent().width + 4 > bar.get_window_extent().width:
                text.set_text("")
        return _svg(figure, title, description, tooltips)


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
    if any(section.charts for section in sections):
        out.append("Charts: see report.html.")
    reasons = [reason for section in sections for _, reason in section.missing_charts]
    if reasons:
        out.append(_md(f"Charts are not drawn: {reasons[0]}"))
    return "\n".join(out) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#111}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem;font-size:0.9rem}caption{text-align:left;font-weight:bold}
th,td{border:1px solid #ccc;padding:0.25rem 0.5rem;text-align:left;vertical-align:top}th{background:#f2f2f2}
td.n{text-align:right;font-variant-numeric:tabular-nums}figure{margin:0 0 1.5rem;overflow-x:auto}
p.note{border-left:4px solid #E69F00;background:#fff8e6;padding:0.25rem 0.75rem}"""


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
        for name, why in section.missing_charts:
            note = f"Chart “{name}” is not drawn (the tables hold its figures). {why}"
            out.append(f'<p class="note" role="note">{escape(note)}</p>')
        out.append("</section>")
    out.append("</main>\n</body>\n</html>\n")
    return "\n".join(out)
