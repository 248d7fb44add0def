"""Printing for the benchmark scripts: results go to the real stdout, as small aligned text tables."""
import os

OUT = os.fdopen(os.dup(1), "w", buffering=1)  # the real stdout, kept even while fd 1 is silenced


def say(*args) -> None:
    print(*args, file=OUT)


def table(header: list[str], rows: list[list]) -> None:
    cells = [header] + [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        say("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            say("  ".join("-" * w for w in widths))
