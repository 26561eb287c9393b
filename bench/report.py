"""Bench reports: the rich table in the terminal, bench.json {"env", "rows"}, bench.csv, bench.md (table, speed-up
against the best PyTorch row, environment, command line) and bench.png, all written atomically via segx.io."""
from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.plot import write_plot
from bench.rows import ROW_KEYS
from segx.io import atomic_write_json, atomic_write_text

SYMBOLS = {"pass": "✅", "fail": "❎", "error": "❌", "skipped": "⏭"}
BASELINE_RUNTIMES = ("torch", "compile")  # "× torch" compares with the best of these (same model and batch)
NOISY_CORES = 0.25  # other processes using more CPU than this while a row was timed make its timing suspect


def speedup(row: dict[str, Any], rows: list[dict[str, Any]]) -> float | None:
    """row FPS / FPS of the fastest PyTorch row of the same model and batch that ran (None if there is none)."""
    base = [r["fps"] for r in rows if r["runtime"] in BASELINE_RUNTIMES and r["model"] == row["model"]
            and r["batch"] == row["batch"] and r["status"] in ("pass", "fail") and r.get("fps")]
    if not base or not row.get("fps"):
        return None
    return row["fps"] / max(base)


def heads_summary(rows: list[dict[str, Any]]) -> str:
    """One line: the fastest row of each head (p50 to a host mask) and the speed-up of the best non-logits one."""
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["status"] in ("pass", "fail") and r.get("p50_ms"):
            head = r.get("head") or "logits"
            if head not in best or r["p50_ms"] < best[head]["p50_ms"]:
                best[head] = r
    parts = [f"{h}: {r['runtime']} {r['precision']} b{r['batch']} {r['p50_ms']:.2f} ms" for h, r in best.items()]
    masks = [r for h, r in best.items() if h != "logits"]
    if "logits" in best and masks:
        fastest = min(masks, key=lambda r: r["p50_ms"])
        parts.append(f"fastest mask-head row {best['logits']['p50_ms'] / fastest['p50_ms']:.2f}x the fastest "
                     f"logits-head row")
    return "heads (each timed to a uint8 mask in host memory): " + "; ".join(parts)


def _f(value: Any, fmt: str, scale: float = 1.0) -> str:
    return "" if value is None else format(value * scale, fmt)


# (header, cell) for the terminal and markdown tables; mIoU and agreement shown in percent, delta in points
COLUMNS: list[tuple[str, Callable[[dict[str, Any], list[dict[str, Any]]], str]]] = [
    ("model", lambda r, _: r["model"]),
    ("runtime", lambda r, _: r["runtime"]),
    ("precision", lambda r, _: r["precision"]),
    ("head", lambda r, _: r.get("head") or "logits"),
    ("device", lambda r, _: r["device"]),
    ("batch", lambda r, _: str(r["batch"])),
    ("size MB", lambda r, _: _f(r.get("size_mb"), ".1f")),
    ("mIoU %", lambda r, _: _f(r.get("miou"), ".2f", 100)),
    ("ΔmIoU", lambda r, _: _f(r.get("miou_delta"), "+.2f", 100)),
    ("agree %", lambda r, _: _f(r.get("pixel_agreement"), ".2f", 100)),
    ("p50 ms", lambda r, _: _f(r.get("p50_ms"), ".2f")),
    ("ms/img", lambda r, _: "" if r.get("p50_ms") is None else f"{r['p50_ms'] / r['batch']:.2f}"),
    ("FPS", lambda r, _: _f(r.get("fps"), ".1f")),
    ("× torch", lambda r, rs: _f(speedup(r, rs), ".2f")),
    ("status", lambda r, _: f"{SYMBOLS.get(r['status'], '')} {r['status']}"),
    ("reason", lambda r, _: r.get("error") or ""),
]


def table_cells(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    return [h for h, _ in COLUMNS], [[cell(r, rows) for _, cell in COLUMNS] for r in rows]


def print_table(rows: list[dict[str, Any]], console: Any = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    headers, cells = table_cells(rows)
    table = Table(title="segx bench", show_lines=False)
    for h in headers:
        table.add_column(h, justify="left" if h in ("model", "runtime", "precision", "device", "status", "reason")
                         else "right", overflow="fold", max_width=60 if h == "reason" else None)
    for row in cells:
        table.add_row(*(escape(c) for c in row))  # reasons may hold "[gpu]" etc., not markup
    if console is None:
        console = Console()
        if not console.is_terminal:  # piped / captured: do not squeeze the table into 80 columns
            console = Console(width=200)
    console.print(table)
    noisy = noisy_rows(rows)
    if noisy:
        console.print(f"[yellow]timed while other processes used > {NOISY_CORES} CPU cores (suspect timings):[/] "
                      f"{escape(', '.join(noisy))}")


def noisy_rows(rows: list[dict[str, Any]]) -> list[str]:
    """'model runtime precision bN (x.x cores)' for rows timed while other processes used the CPU."""
    return [f"{r['model']} {r['runtime']} {r['precision']} b{r['batch']} ({r['others_cpu']:.1f} cores)"
            for r in rows if (r.get("others_cpu") or 0) > NOISY_CORES]


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(env: dict[str, Any], rows: list[dict[str, Any]], command: str) -> str:
    headers, cells = table_cells(rows)
    lines = ["# segx bench", "", f"Command: `{command}`", "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in cells]
    lines += ["", "mIoU and agreement in %, ΔmIoU in points against the torch fp32 reference of the same model; "
              "p50 ms per batch; × torch = FPS over the fastest PyTorch row of the same model and batch."]
    noisy = noisy_rows(rows)
    if noisy:
        lines += ["", f"**Timed while other processes used the CPU** (> {NOISY_CORES} cores; these timings are "
                  f"suspect): {', '.join(noisy)}."]
    lines += ["", "![bench](bench.png)", "", "## Environment", "", "```text"]
    for key, value in env.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = " ".join(map(str, value))
        lines.append(f"{key}: {value}")
    return "\n".join([*lines, "```", ""])


def to_csv(rows: list[dict[str, Any]]) -> str:
    keys = list(ROW_KEYS) + sorted({k for r in rows for k in r} - set(ROW_KEYS))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_reports(out: Path, env: dict[str, Any], rows: list[dict[str, Any]], *, command: str) -> dict[str, Path]:
    """bench.json, bench.csv, bench.md and bench.png in `out`; returns {kind: path}."""
    out = Path(out)
    files = {"json": atomic_write_json(out / "bench.json", {"env": {**env, "command": command}, "rows": rows}),
             "csv": atomic_write_text(out / "bench.csv", to_csv(rows)),
             "md": atomic_write_text(out / "bench.md", markdown(env, rows, command)),
             "png": write_plot(rows, out / "bench.png")}
    return files
