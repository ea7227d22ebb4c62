"""Collect runs/bench/*.md into runs/bench/README.md with the date and machine the figures come from."""
from __future__ import annotations

import datetime as dt

from clothingrec import envinfo
from clothingrec.paths import RUNS_DIR


def main() -> None:
    bench = RUNS_DIR / "bench"
    bench.mkdir(parents=True, exist_ok=True)
    machine = envinfo.machine_report(device="cpu")
    parts = [f"# Benchmarks\n\n{dt.datetime.now():%Y-%m-%d %H:%M}, {machine['cpu']}, "
             f"{machine['cores']} cores, torch threads {machine['torch_threads']}, "
             f"torch {envinfo.package_versions()['torch']}, commit {envinfo.git_commit()}\n"]
    for table in sorted(bench.glob("*.md")):
        if table.name != "README.md" and "quick" not in table.name:
            parts.append(table.read_text())
    (bench / "README.md").write_text("\n".join(parts))
    print((bench / "README.md").read_text())


if __name__ == "__main__":
    main()
