"""The ``report`` stage: ``metrics/results.md`` and ``metrics/plots/*.png`` from the metrics files alone.

:func:`build_report` reads, for every experiment of ``params.yaml``, the files the evaluation and
training stages wrote, as the records of :mod:`mlpgraph.results`:

- ``h36m/EXP.json`` (P1 / P2 per action, last epoch and best on test, the mean-pose baseline,
  parameters, inference time), and ``h36m/EXP_refine.json`` for experiments in ``refinement``,
- ``3dhp/EXP.json`` (PCK / AUC overall, per scene and per sequence, or ``available: false``),
- ``hard/EXP.json`` (P1 / P2 on the hard poses),
- ``real/EXP.json`` (P1 / P2 on real people's motion capture, per clip, and the clip-mean-pose baseline),
- ``train/EXP.json`` (the epochs of the two selections) and ``train/EXP_curve.json`` (the
  per-epoch history), and ``train/EXP_refine.json`` for experiments in ``refinement``.

Every measured number in the report comes from those files; the only figures typed here are
the paper's (:data:`PAPER_FIGURES`), shown in their own columns. Parameters decide only which
experiments exist and how they relate (which differ only in aggregation, in window length).

Modules: :mod:`~mlpgraph.report.loading` (the metrics folder into records),
:mod:`~mlpgraph.report.tables`, :mod:`~mlpgraph.report.real` and :mod:`~mlpgraph.report.ablations` (rows
and Markdown),
:mod:`~mlpgraph.report.plots`, :mod:`~mlpgraph.report.document` (the assembled report),
:mod:`~mlpgraph.report.paper` and :mod:`~mlpgraph.report.formatting`.
"""

from mlpgraph.report.document import build_report
from mlpgraph.report.paper import PAPER_FIGURES

__all__ = ["PAPER_FIGURES", "build_report"]
