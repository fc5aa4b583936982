"""The project's one plain-text table formatter (CLI output, evaluation and benchmark reports).

A table is a list of row dicts and a list of :class:`Column` s saying which key to show, under
which heading, how to format it and on which side to align it::

    >>> print(format_table([{"method": "zero-filled", "psnr": 27.761}],
    ...                    [Column("method", align="<"), Column("psnr", "PSNR (dB)", ".2f")]))
    method      PSNR (dB)
    zero-filled     27.76
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

__all__ = ["Column", "format_table", "METRIC_COLUMNS"]


@dataclass(frozen=True)
class Column:
    """One table column.

    Attributes:
        key: the row key shown in this column.
        title: the heading (defaults to ``key``).
        fmt: a format spec for non-string values (``".2f"``, ``"d"``, ``".4g"``).
        min_width: the smallest column width.
        align: ``">"`` (right, default) or ``"<"`` (left).
        missing: the text of a missing (``None``) value.
    """

    key: str
    title: str | None = None
    fmt: str = ""
    min_width: int = 0
    align: str = ">"
    missing: str = "-"

    @property
    def heading(self) -> str:
        return self.key if self.title is None else self.title

    def cell(self, row: Mapping[str, Any]) -> str:
        value = row.get(self.key)
        if value is None:
            return self.missing
        if isinstance(value, str):
            return value
        return format(value, self.fmt)


#: The usual reconstruction-quality columns (method, PSNR, SSIM, NMSE).
METRIC_COLUMNS = (Column("method", min_width=16, align="<"),
                  Column("psnr", "PSNR (dB)", ".2f", 10), Column("ssim", "SSIM", ".4f", 8),
                  Column("nmse", "NMSE", ".5f", 10))


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column],
                 sep: str = " ", rule: bool = False) -> str:
    """Rows as aligned plain text: a heading line, then one line per row.

    Args:
        rows: one mapping per row.
        columns: the columns, in order.
        sep: the text between columns.
        rule: put a line of dashes under the heading.
    Returns:
        The table (no trailing newline, no trailing spaces).
    """
    cells = [[c.cell(r) for c in columns] for r in rows]
    widths = [max([len(c.heading), c.min_width] + [len(line[i]) for line in cells])
              for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [v.ljust(w) if c.align == "<" else v.rjust(w)
                 for v, w, c in zip(values, widths, columns)]
        return sep.join(parts).rstrip()

    head = [line([c.heading for c in columns])]
    if rule:
        head.append(sep.join("-" * w for w in widths))
    return "\n".join(head + [line(v) for v in cells])
