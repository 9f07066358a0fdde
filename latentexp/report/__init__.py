"""`latentexp report PATH...`: the paper's tables and figures from whatever runs exist under PATH
(``latentexp.report.command``). This file imports nothing, so that reading one part of the report
(``latentexp.load_runs`` reads runs through ``collect``) never runs the rest."""
