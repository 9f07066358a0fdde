"""`latentexp status PATH...`: every run under the paths and how far it got (no torch needed)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from latentexp.arguments import run_paths_parser
from latentexp.errors import DataError
from latentexp.printable import printable
from latentexp.runs.rundir import RunDir, find_run_dirs
from latentexp.runs.spec import flatten

ORDER = ("unreadable", "failed", "running", "resumable", "started", "finished", "old")
OLD_FORMAT = "old format (written before latentexp 0.2: not reported, retrained by train)"
MAX_DIFFERENCES = 3  # settings shown per run where runs of one name differ
COMMON = "the settings most runs of this name share"


def run_states(paths: list[str | Path]) -> list[dict]:
    rows, specs = [], {}
    for files in find_run_dirs(paths):
        try:
            result, spec = files.result_and_spec()
            row = _row(files, result, spec)
        except DataError as err:  # a damaged or planted file: said, and the other runs still listed
            rows.append({"run": files.name, "run_dir": str(files.path), "state": "unreadable",
                         "detail": str(err)})
            continue
        if row is not None:
            rows.append(row)
            if spec is not None:
                specs[row["run_dir"]] = spec
    _tell_apart(rows, specs)
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(rows, key=lambda r: (rank.get(r["state"].split(" ")[0], len(ORDER)), r["run"]))


def finished_seconds(root: Path) -> dict[tuple[str, str], list[float]]:
    """The wall seconds (training and the test evaluation) of each finished run under ``root``, by
    (dataset, model): what a dry run estimates the runs still to train from."""
    seconds: dict[tuple[str, str], list[float]] = defaultdict(list)
    for files in find_run_dirs([root]) if root.exists() else []:
        try:
            result, spec = files.result_and_spec()
        except DataError:
            continue
        if not result or result.get("status") != "finished" or not isinstance(spec, dict):
            continue
        took = result.get("train_seconds")
        if isinstance(took, (int, float)):
            seconds[(spec.get("dataset"), spec.get("model"))].append(
                float(took) + float(result.get("test_eval_seconds") or 0.0))
    return seconds


def _row(files: RunDir, result: dict | None, spec: dict | None) -> dict | None:
    if spec is None:
        if files.is_old_format():
            return {"run": files.name, "run_dir": str(files.path), "state": OLD_FORMAT}
        return None  # some other tool's directory
    state = files.state()
    row = {"run": files.name, "run_dir": str(files.path), "state": state}
    if state in ("finished", "failed"):
        result = result or {}
        row["detail"] = _finished(result) if state == "finished" else str(result.get("reason") or "")
    return row


def _finished(result: dict) -> str:
    accuracy, epochs = result.get("test_accuracy"), result.get("epochs_run")
    parts = [f"test {accuracy:.2f} %" if isinstance(accuracy, (int, float)) else "test accuracy missing"]
    if isinstance(epochs, int):
        parts.append(f"{epochs} epoch{'' if epochs == 1 else 's'}")
    return ", ".join(parts)


def _tell_apart(rows: list[dict], specs: dict[str, dict]) -> None:
    """Runs whose names differ only by their hash get the settings that tell them apart (``differs``),
    so that a reader knows which is which: per run, the identity's keys where it departs from the
    value most of its group share (every differing key where no value has a majority), and
    ``COMMON`` for a run that departs from none (the screen's unchanged reading, say)."""
    groups = defaultdict(list)
    for row in rows:
        if row["run_dir"] in specs:
            groups[row["run"].rsplit("-", 1)[0]].append(row)
    for group in groups.values():
        if len(group) < 2:
            continue
        identities = [flatten(specs[row["run_dir"]].get("identity") or {}) for row in group]
        settings = [{k: json.dumps(v) for k, v in identity.items()} for identity in identities]
        keys = sorted({k for s in settings for k in s if len({t.get(k) for t in settings}) > 1})
        majority = {}
        for key in keys:
            value, count = Counter(s.get(key) for s in settings).most_common(1)[0]
            if 2 * count > len(settings):
                majority[key] = value
        for row, values in zip(group, settings, strict=True):
            own = [k for k in keys if k not in majority or values.get(k) != majority[k]]
            shown = [f"{k}={_short(values.get(k))}" for k in own[:MAX_DIFFERENCES]]
            more = len(own) - MAX_DIFFERENCES
            row["differs"] = ", ".join(shown) + (f", and {more} more" if more > 0 else "") if own else COMMON


def _short(encoded: str | None) -> str:
    """A JSON-encoded value as shown: a string without its quotes, anything long cut."""
    text = "null" if encoded is None else encoded
    text = text[1:-1] if text.startswith('"') else text
    return text if len(text) <= 24 else text[:12] + "…"


def main(argv: list[str]) -> None:
    parser = run_paths_parser(
        "latentexp status",
        "List the runs under PATH as failed, running (a live lock), resumable (a checkpoint), started (no "
        "epoch finished) or finished. Re-running a sweep's command resumes the resumable ones and skips the "
        "finished ones. Runs whose names differ only by their hash are shown with the settings that "
        "tell them apart.")
    parser.add_argument("--json", action="store_true", help="one JSON list instead of the table")
    args = parser.parse_args(argv)
    rows = run_states(args.paths)
    if args.json:
        print(json.dumps(rows, indent=2))  # escapes control characters itself
        return
    for row in rows:
        differs = f"  [{row['differs']}]" if row.get("differs") else ""
        line = f"{row['state']:32s} {row['run']}  {row.get('detail', '')}{differs}"
        print(printable(line.rstrip()))  # names from a shared tree: escapes shown, never obeyed
    counts = Counter(row["state"].split(" ")[0] for row in rows)
    print(f"{len(rows)} runs: " + ", ".join(f"{counts[s]} {s}" for s in ORDER if counts[s]))
    if any(row.get("differs") for row in rows):
        print("[...]: runs that share a name up to its hash, told apart by where each departs from the "
              "settings most of them share (a name held by one run needs none).")
