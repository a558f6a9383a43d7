"""py-spy over the platform's services during one phase (``make bench BENCH_ARGS="--profile"``):
collapsed stacks per service in .local/bench/profiles/, and each one's hottest frames."""
from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

PY_SPY = Path(sys.executable).with_name("py-spy")


@contextmanager
def recording(pids: dict[str, int | None], out: Path, enabled: bool) -> Iterator[dict]:
    """py-spy record (raw, non-blocking) on each pid while the body runs; the summary after."""
    summary: dict = {}
    if not enabled:
        yield summary
        return
    out.mkdir(parents=True, exist_ok=True)
    procs = {name: subprocess.Popen([str(PY_SPY), "record", "--nonblocking", "--format", "raw", "--rate", "50",
                                     "-p", str(pid), "-o", str(out / f"{name}.txt")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for name, pid in pids.items() if pid}
    try:
        yield summary
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGINT)
        for name, proc in procs.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            summary[name] = hottest(out / f"{name}.txt")


def hottest(path: Path, top: int = 12) -> list[tuple[str, float]]:
    """The frames (own code and libraries) with the largest share of samples anywhere on the stack."""
    if not path.exists():
        return []
    inclusive, total = Counter(), 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        for frame in set(stack.split(";")):
            inclusive[frame] += n
    return [(frame, round(100 * n / total, 1)) for frame, n in inclusive.most_common(top + 8)
            if "<module>" not in frame and "run_forever" not in frame][:top] if total else []
