"""The results document as one self-contained HTML page (``metrics/results.html``).

:func:`markdown_to_html` converts the Markdown subset that :mod:`mlpgraph.report.document`
writes (headings, paragraphs, ``-`` lists, pipe tables, images, ``**bold**``, ``*italic*``,
`` `code` `` and links) into HTML, embedding every image it names (the plots and the demo GIFs)
as a data URI, so the one file carries the table, the plots and the demos: it is what
``snakemake --report`` shows, and what can be mailed or archived on its own. Text is escaped; an
image that does not exist is an error (the report stage writes the images before the page).
"""

from __future__ import annotations

import base64
import html
import mimetypes
import re
from collections.abc import Callable
from pathlib import Path

# Where an image named by the document is read: the identity, or a staged output's temporary path.
Locate = Callable[[Path], Path]

_INLINE = [
    (re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])"), r"<em>\1</em>"),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>'),
]
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.45}"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:0.25em 0.5em;text-align:right}"
    "th:first-child,td:first-child{text-align:left}th{background:#f2f2f2}"
    "img{max-width:100%}code{background:#f4f4f4;padding:0 0.2em}"
)


def inline(text: str, base_dir: Path, locate: Locate = Path) -> str:
    """One line of Markdown text as HTML: escaped, images embedded, code/bold/italic/links marked up.

    An image ``![alt](rel)`` is read from ``locate(base_dir / rel)``.
    """
    parts, last = [], 0
    for match in _IMAGE.finditer(text):
        parts.append(_inline_text(text[last : match.start()]))
        parts.append(f'<img alt="{html.escape(match.group(1))}" src="{data_uri(locate(base_dir / match.group(2)))}">')
        last = match.end()
    parts.append(_inline_text(text[last:]))
    return "".join(parts)


def _inline_text(text: str) -> str:
    """Escaped ``text`` with code, bold, italic and links marked up (code spans are not marked up further)."""
    pieces = re.split(r"(`[^`]+`)", text)
    out = []
    for piece in pieces:
        escaped = html.escape(piece, quote=False)
        if piece.startswith("`") and piece.endswith("`") and len(piece) > 1:
            out.append(f"<code>{escaped[1:-1]}</code>")
            continue
        for pattern, replacement in _INLINE:
            escaped = pattern.sub(replacement, escaped)
        out.append(escaped)
    return "".join(out)


def data_uri(path: Path) -> str:
    """``path``'s bytes as a base64 data URI (its MIME type from the file name)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image named by the results document does not exist")
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _cells(row: str) -> list[str]:
    """The cells of one pipe-table row."""
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def _table(rows: list[str], base_dir: Path, locate: Locate) -> str:
    """A pipe table (header, rule, body rows) as an HTML table."""
    head = "".join(f"<th>{inline(c, base_dir, locate)}</th>" for c in _cells(rows[0]))
    body = "".join(
        "<tr>" + "".join(f"<td>{inline(c, base_dir, locate)}</td>" for c in _cells(row)) + "</tr>"
        for row in rows[2:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _blocks(lines: list[str]) -> list[tuple[str, list[str]]]:
    """Group lines into blocks: (kind, lines) with kind heading, table, list or paragraph."""
    blocks: list[tuple[str, list[str]]] = []
    for line in lines:
        if not line.strip():
            blocks.append(("blank", []))
            continue
        kind = (
            "heading"
            if _HEADING.match(line)
            else "table"
            if line.lstrip().startswith("|")
            else "list"
            if line.startswith("- ")
            else "paragraph"
        )
        if blocks and blocks[-1][0] == kind and kind != "heading":
            blocks[-1][1].append(line)
        else:
            blocks.append((kind, [line]))
    return [block for block in blocks if block[0] != "blank"]


def markdown_to_html(text: str, base_dir: Path, title: str = "Results", locate: Locate = Path) -> str:
    """The whole HTML page for Markdown ``text`` whose image paths are relative to ``base_dir``.

    ``locate`` maps an image's final path to where it can be read now (a staged output's temporary).
    """
    body = []
    for kind, lines in _blocks(text.splitlines()):
        if kind == "heading":
            match = _HEADING.match(lines[0])
            assert match is not None
            level = len(match.group(1))
            body.append(f"<h{level}>{inline(match.group(2), base_dir, locate)}</h{level}>")
        elif kind == "table" and len(lines) >= 2 and _TABLE_RULE.match(lines[1]):
            body.append(_table(lines, base_dir, locate))
        elif kind == "list":
            items = "".join(f"<li>{inline(line[2:], base_dir, locate)}</li>" for line in lines)
            body.append(f"<ul>{items}</ul>")
        else:
            body.append("<p>" + " ".join(inline(line, base_dir, locate) for line in lines) + "</p>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
