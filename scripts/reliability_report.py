"""Write the fault-injection results of the test runs into docs/reliability.md.

The reliability tests (tests/test_reliability.py) record each scenario's outcome in
test-artifacts/reliability-<broker>-<database>.json; this script turns every such file
into one table and replaces the part of docs/reliability.md between the result markers.

    python scripts/reliability_report.py
"""

import json
import platform
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"


def table(runs) -> str:
    lines = [
        "| broker | database | scenario | expected | delivered | duplicated | lost | fault → last delivered s "
        "| note |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        for r in run["results"]:
            recovery = "—" if r.get("recovery_s") is None else f"{r['recovery_s']:.1f}"
            lines.append(
                f"| {run['broker']} | {run['database']} | {r['scenario']} | {r['expected']} | {r['delivered']} "
                f"| {r['duplicated']} | {r['lost']} | {recovery} | {r['note']} |"
            )
    return "\n".join(lines)


def main() -> int:
    files = sorted((ROOT / "test-artifacts").glob("reliability-*.json"))
    if not files:
        print("No results: run the test suite first (tests/test_reliability.py).", file=sys.stderr)
        return 1
    runs = [json.loads(f.read_text()) for f in files]
    doc = ROOT / "docs" / "reliability.md"
    text = doc.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    produced = (f"Produced by `python scripts/reliability_report.py` on {date.today().isoformat()}, "
                f"Python {platform.python_version()}, from {len(files)} run(s).")
    doc.write_text(f"{head}{START}\n{produced}\n\n{table(runs)}\n{END}{tail}")
    print(f"Wrote {sum(len(r['results']) for r in runs)} rows from {len(files)} run(s) to {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
