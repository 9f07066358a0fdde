"""`latentexp status PATH...`: every run under the paths and how far it got (no torch needed)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from latentexp.arguments import run_paths_parser
from latentexp.rundir import find_run_dirs

ORDER = ("failed", "running", "resumable", "started", "finished", "old")
OLD_FORMAT = "old format (written before latentexp 0.2: not reported, retrained by train)"


def run_states(paths: list[str | Path]) -> list[dict]:
    rows = []
    for files in find_run_dirs(paths):
        spec = files.read_spec()
        if spec is None:
            if files.is_old_format():
                rows.append({"run": files.name, "run_dir": str(files.path), "state": OLD_FORMAT})
            continue  # some other tool's directory
        state = files.state()
        row = {"run": files.name, "run_dir": str(files.path), "state": state}
        if state in ("finished", "failed"):
            result = files.read_result() or {}
            row["detail"] = (f"test {result['test_accuracy']:.2f} %, {result['epochs_run']} epochs"
                             if state == "finished" else result.get("reason", ""))
        rows.append(row)
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(rows, key=lambda r: (rank.get(r["state"].split(" ")[0], len(ORDER)), r["run"]))


def main(argv: list[str]) -> None:
    parser = run_paths_parser(
        "latentexp status",
        "List the runs under PATH as failed, running (a live lock), resumable (a checkpoint), started (no "
        "epoch finished) or finished. Re-running a sweep's command resumes the resumable ones and skips the "
        "finished ones.")
    parser.add_argument("--json", action="store_true", help="one JSON list instead of the table")
    args = parser.parse_args(argv)
    rows = run_states(args.paths)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(f"{row['state']:32s} {row['run']}  {row.get('detail', '')}".rstrip())
    counts = Counter(row["state"].split(" ")[0] for row in rows)
    print(f"{len(rows)} runs: " + ", ".join(f"{counts[s]} {s}" for s in ORDER if counts[s]))
