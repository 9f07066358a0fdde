"""`latentexp report PATH...`: the paper's tables and figures from whatever runs exist under PATH."""

from latentexp.report.command import build_report, main

__all__ = ["build_report", "main"]
