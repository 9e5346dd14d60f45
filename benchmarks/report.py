"""Write one benchmark's results into its own section of docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Produced by `make bench` (each section by its script in `benchmarks/`). Machines here are noisy,
so every figure that matters is also given as a ratio against a reference measured in the same run.
Sections are rewritten in place; each says when and where it was measured.
"""


def machine() -> str:
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def update_section(name: str, title: str, body: str, path: Path = DOC) -> Path:
    """Replace (or append) the section ``name`` of the benchmarks document with ``body``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else HEADER
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    block = (
        f"<!-- BEGIN {name} -->\n## {title}\n\n_Measured {stamp} on {machine()}._\n\n"
        f"{body.strip()}\n<!-- END {name} -->"
    )
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
    return path


def previous_section(name: str, path: Path = DOC) -> str | None:
    """The current text of section ``name`` (what ``update_section`` is about to replace), or None."""
    if not path.exists():
        return None
    found = re.search(rf"<!-- BEGIN {re.escape(name)} -->(.*?)<!-- END {re.escape(name)} -->", path.read_text(), re.S)
    return found.group(1) if found else None


def peak_rss_mb() -> float:
    """Peak resident memory of this process (and finished children) in MB."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def group_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (the BentoML arbiter and its workers), from /proc."""
    parents = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    family, frontier = set(), {pid}
    while frontier:
        family |= frontier
        frontier = {p for p, parent in parents.items() if parent in frontier} - family
    total = 0
    for pid in family:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next((int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:")), 0)
    return total / 1024


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(row[c]) for c in cols) + " |")
    return "\n".join(out)
