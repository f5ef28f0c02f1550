"""CITATION.cff and docs/citations.bib cite the same papers: the MLP-Graph paper and every baseline's."""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT


def _normalised(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", title.replace("{", "").replace("}", "").lower()).strip()


def test_citation_file_and_bibtex_agree():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["preferred-citation"]["year"] == 2023
    cff_titles = [citation["preferred-citation"]["title"]] + [ref["title"] for ref in citation["references"]]
    bib = (ROOT / "docs" / "citations.bib").read_text()
    bib_titles = re.findall(r"^\s*title\s*=\s*\{(.+)\},$", bib, flags=re.MULTILINE)
    assert sorted(map(_normalised, cff_titles)) == sorted(map(_normalised, bib_titles))
    for model in ("Semantic Graph", "High-Order Graph", "Weight Sharing", "Modulated Graph", "MLP-Graph"):
        assert any(model.lower() in title.lower() for title in cff_titles), model
    assert all(ref["authors"] and ref["year"] for ref in citation["references"])
