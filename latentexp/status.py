"""`latentexp status PATH...`: every run under the paths and how far it got."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from latentexp.report.collect import find_run_dirs, load_run
from latentexp.train.run import RESULT_FILE, run_state

ORDER = ("failed", "running", "resumable", "started", "finished")


def run_states(paths: list[str | Path]) -> list[dict]:
    rows = []
    for run_dir in find_run_dirs(paths):
        if load_run(run_dir) is None:  # some other tool's config.yaml
            continue
        state = run_state(run_dir)
        row = {"run": run_dir.name, "run_dir": str(run_dir), "state": state}
        if state in ("finished", "failed"):
            result = json.loads((run_dir / RESULT_FILE).read_text())
            row["detail"] = (f"test {result['test_accuracy']:.2f} %, {result['epochs_run']} epochs"
                             if state == "finished" else result.get("reason", ""))
        rows.append(row)
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(rows, key=lambda r: (rank.get(r["state"].split(" ")[0], len(ORDER)), r["run"]))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="latentexp status",
        description="List the runs under PATH as failed, running (a live lock), resumable (a checkpoint), "
                    "started (no epoch finished) or finished. Re-running a sweep's command resumes the "
                    "resumable ones and skips the finished ones.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="output roots or run directories")
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
