#!/usr/bin/env python
"""Where a worker's time goes, by step, from a ``run.py --py-spy`` recording (py-spy's raw format).

    python benchmarks/spy_steps.py results/py-spy-async-email-10000.txt --messages 10000 --rate 200

Each sample of a pool process is put in the step of the innermost frame that names one
(claim, build, send, record, connect, fan-out); the rest is Celery's own work or idle. A
sample whose innermost frame is a blocking read (a socket, a database wait) counts as
waiting. ``run.py --py-spy`` records with ``--idle``, so waits are sampled too: the figures
are wall milliseconds per message, summed over the pool processes, not CPU. It prints, per
step, the total and the functions with the most self time (the innermost frame).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict

#: innermost first: the first of these found walking from the leaf to the root names the step
STEP_FRAMES = [
    ("record", ("mark_sent", "record_outcomes", "renew_lease", "SendRun.flush", "SendRun.keep_lease")),
    ("send", ("Sender.send", "SendRun.send")),
    ("build", ("SendRun.build",)),
    ("claim", ("claim_emails", "expire_overdue")),
    ("connect / quit", ("open_connection", "close_quietly")),
    ("fan-out", ("fan_out",)),
]
#: a leaf frame in one of these is a wait for the other side (the sink, PostgreSQL, the broker)
WAIT_LEAVES = ("SocketIO.readinto", "Connection.wait", "wait_c", "wait_epoll", "wait_select", "select", "poll",
               "_poll", "_epoll.poll", "EpollSelector.select", "Event.wait", "Condition.wait",
               "Connection._recv")  # the last: billiard, a pool process waiting for its next task
FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?):(?P<line>\d+)\)$")


def parse(path: str):
    for line in open(path, encoding="utf-8", errors="replace"):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for part in stack.split(";"):
            match = FRAME.match(part)
            if match:
                frames.append((match["func"], match["file"]))
        yield frames, int(count)


def step_of(frames) -> str | None:
    names = [func for func, _file in frames]
    for func in reversed(names):
        for step, markers in STEP_FRAMES:
            if func in markers:
                return step
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw", help="py-spy --format raw output")
    parser.add_argument("--messages", type=int, required=True, help="messages sent in the recording")
    parser.add_argument("--rate", type=float, default=200.0, help="py-spy's --rate (samples per second)")
    parser.add_argument("--top", type=int, default=8, help="functions per step")
    args = parser.parse_args(argv)
    per_ms = 1000 / args.rate / args.messages  # one sample, in ms per message

    steps: Counter = Counter()
    waits: Counter = Counter()
    leaves: dict[str, Counter] = defaultdict(Counter)
    for frames, count in parse(args.raw):
        if not frames:
            continue
        step = step_of(frames)
        if step is None:
            in_task = any(func.endswith("_task") or func == "trace_task" for func, _f in frames)
            step = "other task code (Celery, task wrapper)" if in_task else "idle / pool loop"
        leaf_func, leaf_file = frames[-1]
        steps[step] += count
        if leaf_func in WAIT_LEAVES:
            waits[step] += count
        leaves[step][f"{leaf_func} ({leaf_file})"] += count

    total = sum(steps.values())
    print(f"{total} samples = {total * per_ms:.3f} ms per message (wall, summed over processes)\n")
    print("| Step | ms/msg | waiting | not waiting (about CPU) | top self-time functions, not waiting (ms/msg) |")
    print("|---|---:|---:|---:|---|")
    for step, count in steps.most_common():
        busy = [(name, n) for name, n in leaves[step].most_common() if name.split(" (")[0] not in WAIT_LEAVES]
        top = ", ".join(f"`{name}` {n * per_ms:.3f}" for name, n in busy[:args.top])
        print(f"| {step} | {count * per_ms:.3f} | {waits[step] * per_ms:.3f} | {(count - waits[step]) * per_ms:.3f} "
              f"| {top} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
