"""`run_bench`: plan the matrix, make each row's model file (exports cached per recipe), measure every row in its
own subprocess, never stop on a row's failure, write the reports, then apply the --max-miou-drop gate."""
from __future__ import annotations

import contextlib
import logging
import shlex
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bench import matrix, rows, sources
from segx.errors import SegxError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchConfig:
    models: tuple[str, ...] = ()          # .pt checkpoints or run folders (trained)
    archs: tuple[str, ...] = ()           # random-init archs (speed only)
    runtimes: tuple[str, ...] = ()        # () = matrix.DEFAULT_RUNTIMES[device]
    precisions: tuple[str, ...] = ()      # () = matrix.DEFAULT_PRECISIONS[device]
    data: str | None = None               # VOC root: parity + mIoU per row, INT8 calibration
    split: str = "val"
    n_images: int | None = None           # parity images: None = the whole split
    calib_split: str = "train"            # INT8 calibration (exporters.quantize policy)
    calib_n: int = 300
    imgsz: int = 512
    batches: tuple[int, ...] = (1,)
    threads: int | None = None
    device: str = "cpu"
    out: str = "runs/bench"
    max_miou_drop: float = 1.0            # points; a row losing more is "fail"
    strict: bool = False                  # "error" rows also fail the gate
    min_iters: int = 50
    min_time: float = 2.0
    timeout: float = 900.0                # seconds per row (its subprocess)
    repeat: int = 1                       # timing rounds over the whole matrix; a row reports the median round
    command: str | None = None            # the command line shown in bench.md
    heads: tuple[str, ...] = ()           # deployment heads to compare, each row timed to a host mask; () = logits

    def resolved(self) -> BenchConfig:
        kind = matrix.check_device(self.device)
        return BenchConfig(**{**{f.name: getattr(self, f.name) for f in fields(self)},
                              "runtimes": self.runtimes or matrix.DEFAULT_RUNTIMES[kind],
                              "precisions": self.precisions or matrix.DEFAULT_PRECISIONS[kind]})

    def to_command(self) -> str:
        """The `segx bench` command line equivalent to this config."""
        parts = ["segx", "bench"]
        parts += ["--models", *self.models] if self.models else []
        parts += ["--archs", ",".join(self.archs)] if self.archs else []
        parts += ["--runtimes", ",".join(self.runtimes), "--precisions", ",".join(self.precisions)]
        parts += ["--data", self.data, "--split", self.split] if self.data else []
        parts += ["--n-images", str(self.n_images)] if self.data and self.n_images else []
        parts += ["--imgsz", str(self.imgsz), "--batch", ",".join(map(str, self.batches)), "--device", self.device]
        parts += ["--threads", str(self.threads)] if self.threads else []
        parts += ["--repeat", str(self.repeat)] if self.repeat > 1 else []
        parts += ["--heads", ",".join(self.heads)] if self.heads else []
        parts += ["--out", self.out, "--max-miou-drop", f"{self.max_miou_drop:g}"]
        return shlex.join(parts)


@dataclass
class BenchResult:
    env: dict[str, Any]
    rows: list[dict[str, Any]]
    files: dict[str, Path] = field(default_factory=dict)

    def failing(self, strict: bool = False) -> list[dict[str, Any]]:
        bad = ("fail", "error") if strict else ("fail",)
        return [r for r in self.rows if r["status"] in bad]


class _Runner:
    """Per-run state: exported files (one per recipe and shape) and parity results shared between batch sizes."""

    def __init__(self, config: BenchConfig, out: Path, data: Path | None, calib: Path | None) -> None:
        self.config, self.out, self.data, self.calib = config, out, data, calib
        self.exports: dict[tuple[Any, ...], tuple[Path, float]] = {}
        self.parity: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.notes: dict[str, dict[str, Any]] = {}  # INT8 exports: calibration, tuning (bench.md notes)

    def model_file(self, plan: matrix.RowPlan) -> tuple[Path, float | None]:
        """The file the row loads: the checkpoint itself, or its export (made once, then reused)."""
        recipe = plan.recipe
        if recipe is None or recipe.fmt is None:
            return plan.source.checkpoint, None
        import exporters

        # a format tuned per batch (TensorRT: the profile's opt) gets one export per row batch
        tuned = {"batch": plan.batch} if plan.dynamic and "batch" in exporters.get_format(recipe.fmt).options else {}
        key = (plan.source.label, recipe.fmt, recipe.fp16, recipe.int8, plan.dynamic, tuned.get("batch"), plan.head)
        if key not in self.exports:
            tag = recipe.fmt + ("-fp16" if recipe.fp16 else "") + ("-int8" if recipe.int8 else "") + \
                ("-dynamic" if plan.dynamic else "") + (f"-b{plan.batch}" if tuned else "") + \
                ("" if plan.head == "logits" else f"-{plan.head}")
            data = self.data or (self.calib if recipe.int8 else None)
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(sys.stderr):  # stdout is the table's (NNCF prints progress bars there)
                made = exporters.run_export(str(plan.source.checkpoint), recipe.fmt, imgsz=plan.imgsz,
                                            dynamic=plan.dynamic, fp16=recipe.fp16, int8=recipe.int8, data=data,
                                            **tuned, split=self.config.split if self.data else "train" if data else "val",
                                            calib_split=self.config.calib_split, calib_n=self.config.calib_n,
                                            out=self.out / "models" / plan.source.label / tag, verify=False,
                                            head=plan.head)
            if made.path is None:
                raise SegxError(made.summary())
            self.notes[str(made.path)] = made.attempts[0].notes
            self.exports[key] = (Path(made.path), time.perf_counter() - t0)
        return self.exports[key]

    def spec(self, plan: matrix.RowPlan, model: Path) -> dict[str, Any]:
        c = self.config
        parity_key = (str(model), plan.runtime, plan.precision, plan.device, plan.head)
        return {"model": str(model), "runtime": plan.runtime, "precision": plan.precision, "device": plan.device,
                "threads": c.threads, "batch": plan.batch, "imgsz": plan.imgsz, "head": plan.head,
                "to_mask": bool(c.heads),
                "speed": {"min_iters": c.min_iters, "min_time": c.min_time},
                "parity": None if self.data is None or parity_key in self.parity else
                {"reference": str(plan.source.checkpoint), "data": str(self.data), "split": c.split,
                 "n": c.n_images}}

    def run(self, plan: matrix.RowPlan) -> dict[str, Any]:
        """One row; any failure becomes an "error" row with its reason (the matrix never stops)."""
        row = rows.new_row(plan)
        if plan.skip:
            return {**row, "status": "skipped", "error": plan.skip}
        try:
            model, export_s = self.model_file(plan)
            row.update(model_path=str(model), size_mb=size_mb(model), export_s=export_s)
            notes = self.notes.get(str(model))
            row.update({f"int8_{k}": v for k, v in (notes or {}).items() if k != "sensitivity"})
            result = rows.run_worker(self.spec(plan, model), self.config.timeout)
        except Exception as e:  # one row's failure is that row's status, like ultralytics benchmarks
            log.debug("row %s failed", plan.name, exc_info=True)
            return {**row, "status": "error", "error": rows.one_line(e)}
        return self._finish(row, plan, result)

    def again(self, plan: matrix.RowPlan, row: dict[str, Any]) -> None:
        """One more timing round of a row that ran (no parity: that is kept from the first round)."""
        if row["status"] not in ("pass", "fail"):
            return
        try:
            result = rows.run_worker(self.spec(plan, Path(row["model_path"])), self.config.timeout)
        except Exception as e:  # noqa: BLE001 - a later round failing keeps the rounds that worked
            log.warning("%s: timing round failed (%s); keeping the earlier rounds", plan.name, rows.one_line(e))
            return
        rows.add_round(row, result)

    def _finish(self, row: dict[str, Any], plan: matrix.RowPlan, result: dict[str, Any]) -> dict[str, Any]:
        if result.get("status") == "skipped":
            return {**row, "status": "skipped", "error": result.get("error")}
        parity_key = (row["model_path"], plan.runtime, plan.precision, plan.device, plan.head)
        if "pixel_agreement" in result:
            self.parity[parity_key] = {k: result[k] for k in rows.PARITY_KEYS if k in result}
        result = {**result, **self.parity.get(parity_key, {})}
        for key in (*rows.PARITY_KEYS, *rows.EXTRA_KEYS):
            if key in result:
                row[key] = result[key]
        rows.add_round(row, result)
        floor = _agreement_floor(plan.precision) if row.get("pixel_agreement") is not None else None
        row["status"], row["error"] = rows.gate(row, self.config.max_miou_drop, floor)
        return row


def _agreement_floor(precision: str) -> float | None:
    """The pixel-agreement floor of a precision's parity gate (None: that gate only checks mIoU)."""
    from segx.parity import gate_for

    return getattr(gate_for(precision), "min_agreement", None)


def _data_root(config: BenchConfig) -> Path | None:
    if not config.data:
        return None
    from segx.data.layout import resolve_voc_root

    return resolve_voc_root(config.data)


def _calibration(config: BenchConfig, out: Path, plans: list[matrix.RowPlan]) -> Path | None:
    """Without --data, INT8 rows calibrate on a small synthetic VOC set made in OUT/calib_<imgsz>."""
    if config.data or not any(p.recipe and p.recipe.int8 and not p.skip for p in plans):
        return None
    return sources.calibration_set(out / f"calib_{config.imgsz}", imgsz=config.imgsz)


def _check(config: BenchConfig) -> None:
    if config.imgsz < 32 or config.imgsz % 8:
        raise SegxError(f"--imgsz must be a multiple of 8 and >= 32 (got {config.imgsz})")
    if config.repeat < 1:
        raise SegxError(f"--repeat must be >= 1 (got {config.repeat})")
    from segx.models.heads import check_head

    for head in config.heads:
        check_head(head)
    if config.n_images is not None and config.n_images < 1:
        raise SegxError(f"--n-images must be >= 1 (got {config.n_images})")
    if config.threads is not None and config.threads < 1:
        raise SegxError(f"--threads must be >= 1 (got {config.threads})")


def run_bench(config: BenchConfig | None = None, **options: Any) -> BenchResult:
    """Benchmark every model x runtime x precision x batch; write bench.{json,csv,md,png} to config.out.

    Raises SegxError AFTER the reports are written when a row fails its gate (or errors, with strict)."""
    from bench import report
    from bench.env import collect_env, load_avg
    from segx.log import progress

    config = (config or BenchConfig(**options)).resolved()
    _check(config)
    out = Path(config.out)
    matrix.check_names(config.runtimes, config.precisions)
    data = _data_root(config)
    used: set[str] = set()
    srcs = sources.from_checkpoints(config.models, used) + \
        sources.from_archs(config.archs, imgsz=config.imgsz, folder=out / "models" / "random_init", used=used)
    plans = matrix.plan_rows(srcs, config.runtimes, config.precisions, config.batches, device=config.device,
                             imgsz=config.imgsz, heads=config.heads or ("logits",))
    env = collect_env()
    runner = _Runner(config, out, data, _calibration(config, out, plans))
    result = BenchResult(env=env, rows=[])
    try:
        with progress() as bar:
            task = bar.add_task("bench", total=len(plans) * config.repeat)
            for plan in plans:
                bar.update(task, description=plan.name)
                result.rows.append(runner.run(plan))
                bar.advance(task)
            for n in range(2, config.repeat + 1):  # interleaved rounds: slow spells of the machine hit every row
                for plan, row in zip(plans, result.rows, strict=True):
                    bar.update(task, description=f"round {n}: {plan.name}")
                    runner.again(plan, row)
                    bar.advance(task)
    finally:  # an interrupted run still leaves the rows it measured
        env["load_avg_end"] = load_avg()
        result.files = report.write_reports(out, env, result.rows, command=config.command or config.to_command())
    report.print_table(result.rows)
    _say_what_was_not_measured(result.rows)
    if len(config.heads) > 1:
        log.warning(report.heads_summary(result.rows))
    log.info("reports in %s: %s", out, ", ".join(p.name for p in result.files.values()))
    _gate(result, config)
    return result


def size_mb(model: Path) -> float:
    """The row's "size MB": the model file, but for a segx checkpoint only its weights (a run's last.pt also holds
    the optimizer state, which no deployment loads)."""
    if model.suffix != ".pt":
        return rows.model_size_mb(model)
    from segx.io import load_checkpoint

    state = load_checkpoint(model)["model"]
    return sum(t.numel() * t.element_size() for t in state.values()) / 2**20


def _say_what_was_not_measured(result_rows: list[dict[str, Any]]) -> None:
    timed = [r for r in result_rows if r.get("p50_ms") is not None]
    blind = [r for r in timed if r.get("others_cpu") is None]
    if blind and sys.platform.startswith("linux"):
        log.warning("others_cpu (CPU other processes used meanwhile) not measured for %d of %d rows: their timing "
                    "ran under 0.5 s, too short for /proc/stat; raise --min-time to 0.5 or more", len(blind),
                    len(timed))


def _gate(result: BenchResult, config: BenchConfig) -> None:
    bad = result.failing(config.strict)
    if bad:
        names = "; ".join(f"{r['model']} {r['runtime']} {r['precision']} b{r['batch']}: {r['status']} "
                          f"({r['error']})" for r in bad)
        raise SegxError(f"{len(bad)} bench row(s) failed the gate (reports in {config.out}): {names}")
