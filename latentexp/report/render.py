"""Tables as Markdown or LaTeX (booktabs) text."""

from __future__ import annotations

from latentexp.report.tables import Table


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(tables: list[Table]) -> str:
    parts = []
    for table in tables:
        lines = [f"## {table.title}", "",
                 "| " + " | ".join(map(_md_escape, table.columns)) + " |",
                 "|" + "|".join("---" for _ in table.columns) + "|"]
        lines += ["| " + " | ".join(map(_md_escape, row)) + " |" for row in table.rows]
        if table.notes:
            lines.append("")
            lines += [f"- {note}" for note in table.notes]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


TEX_CHARACTERS = str.maketrans({
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "λ": r"$\lambda$", "‡": r"$^\ddagger$", "—": "---", "−": "$-$", "×": r"$\times$", "`": "",
})


def tex_escape(text: str) -> str:
    """Plain text to LaTeX, one character at a time (so no replacement is escaped twice)."""
    return text.translate(TEX_CHARACTERS)


def tex_label(key: str) -> str:
    """A table key as a LaTeX label: a key holds percent-encoded names (report/names.py), and
    '%' would start a comment there."""
    return key.replace("_", "-").replace("%", ":")


def to_latex(tables: list[Table]) -> str:
    parts = ["% latentexp report. Needs \\usepackage{booktabs}."]
    for table in tables:
        text_columns = min(table.text_columns, len(table.columns))
        align = "l" * text_columns + "r" * (len(table.columns) - text_columns)
        lines = ["\\begin{table}[ht]", "\\centering", "\\small",
                 f"\\caption{{{tex_escape(table.title)}}}",
                 f"\\label{{tab:{tex_label(table.key)}}}",
                 f"\\begin{{tabular}}{{{align}}}", "\\toprule",
                 " & ".join(tex_escape(c) for c in table.columns) + " \\\\", "\\midrule"]
        lines += [" & ".join(tex_escape(c) for c in row) + " \\\\" for row in table.rows]
        lines += ["\\bottomrule", "\\end{tabular}"]
        if table.notes:
            lines.append("\\par\\smallskip\\footnotesize " + " ".join(tex_escape(n) for n in table.notes))
        lines.append("\\end{table}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
