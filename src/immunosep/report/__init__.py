"""Tables, figures, CONSORT diagram and the HTML report (by arm for the DSMB, pooled for the steering committee)."""

from immunosep.report.html import print_pdf, render_report, write_reports

__all__ = ["print_pdf", "render_report", "write_reports"]
