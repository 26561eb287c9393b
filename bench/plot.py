"""bench.png: accuracy (mIoU) against latency, one point per model x runtime x precision, Pareto front marked;
without accuracy figures (or with untrained models only), images/s against model size. Also the Pareto front."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from segx.io import atomic_path

MARKERS = {"fp32": "o", "fp16": "s", "bf16": "D", "int8": "^"}


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (x lower-or-equal AND y higher-or-equal, one strictly),
    sorted by x: the best accuracy for each latency budget when x = latency and y = accuracy."""
    def beaten(i: int) -> bool:
        xi, yi = points[i]
        return any(x <= xi and y >= yi and (x < xi or y > yi) for x, y in points)

    return sorted((i for i in range(len(points)) if not beaten(i)), key=lambda i: (points[i][0], -points[i][1]))


def plot_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows drawn: ran (pass/fail), timed, at the smallest batch measured."""
    timed = [r for r in rows if r["status"] in ("pass", "fail") and r.get("p50_ms")]
    if not timed:
        return []
    batch = min(r["batch"] for r in timed)
    return [r for r in timed if r["batch"] == batch]


def axes_for(rows: list[dict[str, Any]]) -> tuple[str, str, str, str]:
    """(x key, y key, x label, y label): mIoU vs latency when trained models carry mIoU, else FPS vs size
    (a random-init model's mIoU says nothing about the trade-off)."""
    if any(r.get("miou") is not None and r.get("trained", True) for r in rows):
        return "latency_ms", "miou_pct", "latency, ms per image (p50)", "mIoU, %"
    return "size_mb", "fps", "model size, MB", "images / s"


def _point(r: dict[str, Any], key: str) -> float | None:
    values = {"latency_ms": r["p50_ms"] / r["batch"], "miou_pct": None if r.get("miou") is None else r["miou"] * 100,
              "size_mb": r.get("size_mb"), "fps": r.get("fps")}
    return values[key]


def write_plot(rows: list[dict[str, Any]], path: Path, title: str = "segx bench") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = plot_rows(rows)
    xk, yk, xlabel, ylabel = axes_for(drawn)
    pts = [(r, x, y) for r in drawn if (x := _point(r, xk)) is not None and (y := _point(r, yk)) is not None]
    fig, ax = plt.subplots(figsize=(9, 6), dpi=120)
    colors = {rt: f"C{i}" for i, rt in enumerate(sorted({r["runtime"] for r, _, _ in pts}))}
    for r, x, y in pts:
        ax.scatter(x, y, c=colors[r["runtime"]], marker=MARKERS.get(r["precision"], "o"), s=50,
                   edgecolors="k" if r["status"] == "pass" else "r", zorder=3)
        ax.annotate(f"{r['model']} {r['runtime']} {r['precision']}", (x, y), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
    front = pareto_front([(x, y) for _, x, y in pts])
    if len(front) > 1:
        ax.plot([pts[i][1] for i in front], [pts[i][2] for i in front], "k--", lw=1, label="Pareto front", zorder=2)
        ax.legend(loc="best", fontsize=8)
    if not pts:
        ax.text(0.5, 0.5, "no timed rows", ha="center", va="center", transform=ax.transAxes)
    batch = drawn[0]["batch"] if drawn else 1
    ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{title}: batch {batch}; colour = runtime, marker = precision, "
           "red edge = failed its gate")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
