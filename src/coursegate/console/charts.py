"""Charts drawn on the server as inline SVG: no script, no external asset, and an accessible
name and a text summary for whoever cannot see them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from markupsafe import Markup, escape

WIDTH = 600
HEIGHT = 180
PAD_LEFT = 36
PAD_BOTTOM = 26
PAD_TOP = 14


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    css: str
    values: Sequence[int]


def days(today: date, count: int) -> list[date]:
    return [today - timedelta(days=count - 1 - i) for i in range(count)]


def bar_chart(name: str, span: Sequence[date], series: Sequence[Series]) -> Markup:
    """Bars per day (side by side when there are several series), the tallest labelled."""
    top = max((v for s in series for v in s.values), default=0)
    scale = max(top, 1)
    plot_w = WIDTH - PAD_LEFT
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_w / max(len(span), 1)
    bar_w = max(slot * 0.8 / max(len(series), 1), 1)
    totals = ", ".join(f"{s.name} {sum(s.values)}" for s in series)
    summary = f"{name}, {span[0]:%d %b} to {span[-1]:%d %b}: {totals}; highest day {top}."
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(name)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(name)}</title><desc>{escape(summary)}</desc>",
        f'<line class="axis" x1="{PAD_LEFT}" y1="{HEIGHT - PAD_BOTTOM}" '
        f'x2="{WIDTH}" y2="{HEIGHT - PAD_BOTTOM}"/>',
        f'<text x="0" y="{PAD_TOP + 10}">{top}</text>',
        f'<text x="0" y="{HEIGHT - PAD_BOTTOM}">0</text>',
    ]
    for i, day in enumerate(span):
        for j, s in enumerate(series):
            value = s.values[i]
            h = plot_h * value / scale
            x = PAD_LEFT + i * slot + slot * 0.1 + j * bar_w
            y = HEIGHT - PAD_BOTTOM - h
            parts.append(
                f'<rect class="bar {s.css}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}"><title>{day:%d %b}: {escape(s.name)} {value}</title></rect>'
            )
        if (len(span) - 1 - i) % 7 == 0:  # today, and every week back from it
            last = i == len(span) - 1
            x = WIDTH if last else PAD_LEFT + (i + 0.5) * slot
            anchor = "end" if last else "middle"
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">{day:%d %b}</text>'
            )
    parts.append("</svg>")
    # Every text that came from data went through escape() above.
    return Markup("".join(parts))  # noqa: S704
