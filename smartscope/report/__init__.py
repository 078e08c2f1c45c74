"""The run report: ``report.html``, one self-contained page about a run folder.

- ``write_report(folder)``: read the run's records and images, write ``folder/report.html``.
- ``load_run(folder)``: the records of a run folder (run.json, decisions, cells, frames).
"""

from smartscope.report.html import REPORT_NAME, capture_scores, render, write_report
from smartscope.report.load import RunRecords, load_run

__all__ = ["REPORT_NAME", "RunRecords", "capture_scores", "load_run", "render", "write_report"]
