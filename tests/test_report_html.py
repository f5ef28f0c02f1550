"""``metrics/results.html``: the results document's Markdown as one self-contained HTML page."""

from __future__ import annotations

import base64

import pytest

from mlpgraph.report.html import markdown_to_html

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

DOCUMENT = """# Results

Figures on **synthetic** data, see `metrics/` and [the docs](docs/README.md).
A second line of the same paragraph with *emphasis* and `**not bold**` & <script>.

## Table

| Method | P1 (mm) |
|---|---:|
| MLP-Graph `mlpgraph_gt_f1` | 73.7 |
| SemGCN | 123.6 |

- ![plot](plots/p.png)
- second item
"""


def test_markdown_subset_converts_by_hand(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "p.png").write_bytes(PNG)
    page = markdown_to_html(DOCUMENT, tmp_path, title="R & D")
    assert page.startswith("<!DOCTYPE html>") and "<title>R &amp; D</title>" in page
    assert "<h1>Results</h1>" in page and "<h2>Table</h2>" in page
    assert (
        "<p>Figures on <strong>synthetic</strong> data, see <code>metrics/</code> and "
        '<a href="docs/README.md">the docs</a>. A second line of the same paragraph with <em>emphasis</em> and '
        "<code>**not bold**</code> &amp; &lt;script&gt;.</p>"
    ) in page
    assert (
        "<table><thead><tr><th>Method</th><th>P1 (mm)</th></tr></thead><tbody>"
        "<tr><td>MLP-Graph <code>mlpgraph_gt_f1</code></td><td>73.7</td></tr>"
        "<tr><td>SemGCN</td><td>123.6</td></tr></tbody></table>"
    ) in page
    image = f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(PNG).decode()}">'
    assert f"<ul><li>{image}</li><li>second item</li></ul>" in page
    assert "<script>" not in page


def test_missing_image_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="gone.gif"):
        markdown_to_html("![demo](demo/gone.gif)", tmp_path)
