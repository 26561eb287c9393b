"""One bench row: its result dict (the DESIGN.md keys first), running it in its own subprocess
(`python -m bench.worker`), and its status: pass / fail (ran, missed its gate) / error (reason) / skipped (reason)."""
from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path
from typing import Any

from bench.matrix import RowPlan
from bench.worker import RESULT_KEY

ROW_KEYS = ("arch", "runtime", "precision", "device", "batch", "imgsz", "size_mb", "miou", "miou_delta",
            "pixel_agreement", "max_abs_logit_diff", "p50_ms", "p95_ms", "p99_ms", "fps", "status", "error")
STATUSES = ("pass", "fail", "error", "skipped")
# worker result fields copied into the row: parity (shared by rows of the same model file) and the rest
PARITY_KEYS = ("miou", "miou_ref", "miou_delta", "pixel_agreement", "max_abs_logit_diff", "mean_abs_logit_diff",
               "parity_images", "parity_passed", "parity_reason", "drop_ci")
EXTRA_KEYS = ("threads", "peak_mem_mb", "gpu_mem_mb", "load_s", "iters", "cpu_cores", "others_cpu")


class WorkerError(Exception):
    """The row's subprocess failed: crashed, timed out, or printed no result."""


def new_row(plan: RowPlan) -> dict[str, Any]:
    """A row with every DESIGN.md key (None where not measured) plus the model it belongs to."""
    row: dict[str, Any] = dict.fromkeys(ROW_KEYS)
    row.update(arch=plan.source.arch, runtime=plan.runtime, precision=plan.precision, head=plan.head,
               device=plan.device, batch=plan.batch, imgsz=plan.imgsz, model=plan.source.label,
               trained=plan.source.trained,
               note=plan.recipe.note if plan.recipe else "")
    return row


def one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    from segx.errors import SegxError

    if isinstance(e, (SegxError, WorkerError)) and msg:
        return msg
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def model_size_mb(path: Path) -> float:
    """Size of a model on disk: the file, plus its weights file (.xml / .ncnn.param -> .bin), or a folder's files."""
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    if path.suffix in (".xml", ".param") and path.with_suffix(".bin").is_file():
        files.append(path.with_suffix(".bin"))
    return sum(f.stat().st_size for f in files) / 2**20


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def run_worker(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one row in `python -m bench.worker` and return its result dict; WorkerError with the reason otherwise."""
    from segx.spawn import python_module

    argv, env = python_module("bench.worker", json.dumps(spec))
    if spec.get("threads"):
        env["OMP_NUM_THREADS"] = str(spec["threads"])
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as e:
        raise WorkerError(f"timed out after {timeout:g} s (raise --timeout)") from e
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{") and RESULT_KEY in line:
            try:
                result = json.loads(line)[RESULT_KEY]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
            if proc.returncode == 0:
                return result
    reason = _last_line(proc.stderr) or "no output"
    if proc.returncode < 0:
        reason = f"crashed (signal {-proc.returncode}): {reason}"
    elif proc.returncode == 0:
        reason = f"printed no result: {reason}"
    raise WorkerError(reason)


def add_round(row: dict[str, Any], result: dict[str, Any]) -> None:
    """Add one timing round to a row; its latencies become the median over rounds (fps from that p50) and
    others_cpu the worst round's."""
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        rounds = row.setdefault(key.replace("_ms", "_rounds"), [])  # p50_rounds, ...
        rounds.append(result[key])
        row[key] = float(statistics.median(rounds))
    row["fps"] = row["batch"] * 1000.0 / row["p50_ms"] if row["p50_ms"] > 0 else 0.0
    if result.get("others_cpu") is not None:
        row["others_cpu"] = max(result["others_cpu"], row.get("others_cpu") or 0.0)


def gate(row: dict[str, Any], max_miou_drop: float, agreement_floor: float | None) -> tuple[str, str | None]:
    """pass / fail of a row that ran: mIoU drop > max_miou_drop points, or agreement below the precision's floor."""
    if row.get("pixel_agreement") is None:
        return "pass", None  # speed only: nothing to compare
    reasons = []
    delta = row.get("miou_delta")
    if delta is not None and -delta * 100 > max_miou_drop:
        reasons.append(f"mIoU drop {-delta * 100:.2f} points > {max_miou_drop:g}")
    if agreement_floor is not None and row["pixel_agreement"] < agreement_floor:
        reasons.append(f"pixel agreement {row['pixel_agreement'] * 100:.2f}% < {agreement_floor * 100:g}%")
    return ("fail", "; ".join(reasons)) if reasons else ("pass", None)
