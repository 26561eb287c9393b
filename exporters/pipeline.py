"""One export end to end: each precision attempt is written under a temporary name, checked against PyTorch (parity)
and renamed into place only when it passes; a reduced precision that fails (int8, fp16) falls back to the next one,
so segx only leaves model files that answer like PyTorch (or were written with verify=False)."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from segx.parity import ParityResult, check_dynamic, check_parity
from exporters.job import (ExportJob, ExportOptions, Source, check_writable, load_source, make_job, output_path,
                          validate_options)
from segx.errors import SegxError
from segx.io import atomic_path

if TYPE_CHECKING:
    from exporters import Format

log = logging.getLogger(__name__)

FALLBACK = {"int8": ("int8", "fp16", "fp32"), "fp16": ("fp16", "fp32"), "fp32": ("fp32",)}
# an fp16 OpenVINO IR stores fp16 weights; CPUs compute it in f32 (the file's precision still sets the gate)
PARITY_PRECISION = {("openvino", "fp16"): "fp32"}


@dataclass
class Attempt:
    precision: str
    path: Path                       # where the file goes (it exists only when kept)
    kept: bool = False
    seconds: float = 0.0             # export time, parity check excluded
    size_mb: float = 0.0
    checks: list[ParityResult] = field(default_factory=list)
    error: str | None = None         # the exporter failed (reduced precisions only; fp32 failures raise)
    notes: dict[str, object] = field(default_factory=dict)  # INT8: calibration, tuning, sensitivity (ExportJob.report)

    @property
    def reason(self) -> str:
        if self.error:
            return self.error
        failed = [c.reason for c in self.checks if not c.passed]
        return "; ".join(failed) if failed else "; ".join(c.reason for c in self.checks) or "not verified"


@dataclass
class ExportResult:
    fmt: str
    requested: str                   # precision asked for
    attempts: list[Attempt]
    verified: bool

    @property
    def kept(self) -> Attempt | None:
        return next((a for a in self.attempts if a.kept), None)

    @property
    def passed(self) -> bool:
        return self.kept is not None

    @property
    def path(self) -> Path | None:
        return self.kept.path if self.kept else None

    @property
    def precision(self) -> str | None:
        return self.kept.precision if self.kept else None

    @property
    def build_error(self) -> bool:
        """The requested precision could not even be built (an exporter error, not a failed gate)."""
        return bool(self.attempts) and self.attempts[0].error is not None

    @property
    def fell_back(self) -> bool:
        return self.passed and self.precision != self.requested

    def summary(self) -> str:
        first = self.attempts[0]
        if not self.passed and self.verified:
            tried = "; ".join(f"{a.precision}: {a.reason}" for a in self.attempts)
            return (f"{self.fmt} export failed its parity check ({tried}); no model file was kept "
                    f"(--no-verify writes it anyway)")
        kept = self.kept
        if kept is None:
            return f"{self.fmt} {first.precision} export failed ({first.reason})"
        if self.fell_back:
            failed = "; ".join(f"{a.precision} could not be built ({a.error})" if a.error else
                               f"{a.precision} failed its gate ({a.reason})" for a in self.attempts if not a.kept)
            return f"{failed}; kept the best precision that passed: {kept.precision} -> {kept.path}"
        check = "parity PASS" if self.verified else "not verified"
        return f"{self.fmt} {kept.precision} -> {kept.path} ({kept.size_mb:.1f} MB in {kept.seconds:.1f} s, {check})"


def companion(path: Path, suffix: str) -> Path:
    """A file written beside the model: best.xml -> best.bin, best.engine -> best.engine.json."""
    return path.with_name(path.stem + suffix)


def _write(row: Format, job: ExportJob, path: Path) -> None:
    """Run the format's exporter; foreign exceptions become one SegxError line (full text with --debug)."""
    try:
        row.function(job, path)
    except SegxError:
        raise
    except Exception as e:  # noqa: BLE001 - exporters raise anything; the user needs one line
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise SegxError(f"{row.key} export of {job.meta.arch} ({job.precision}) failed: {type(e).__name__}: "
                        f"{first[:300]} (rerun with --debug for the full error)") from e


def verify(row: Format, job: ExportJob, path: Path, source: Source) -> list[ParityResult]:
    """Parity of the written file against the PyTorch model (plus a second-size check for dynamic exports)."""
    from segx.runtimes import get_runtime
    from segx.runtimes.torch_rt import TorchRuntime

    device = row.devices[0]
    precision = PARITY_PRECISION.get((row.key, job.precision), job.precision)
    opts = job.opts
    try:
        with TorchRuntime.from_module(source.module, source.meta, device=device, channels_last=False) as ref, \
                get_runtime(row.runtime)(path, precision=precision, device=device) as cand:
            checks = [check_parity(ref, cand, data=opts.data, split=opts.split, n=opts.n_verify,
                                   imgsz=job.meta.imgsz)]
            if job.meta.dynamic:
                checks.append(check_dynamic(ref, cand, data=opts.data, split=opts.split, imgsz=job.meta.imgsz,
                                            n=opts.n_verify))
    finally:
        source.module.to("cpu")
    return checks


class _Rejected(Exception):
    """Raised inside atomic_path so a file that failed its check is deleted, never renamed into place."""


def attempt(row: Format, source: Source, opts: ExportOptions, precision: str,
            traced: dict[object, object] | None = None) -> Attempt:
    """Export one precision to a temp name, verify it, and rename it (and its companions) into place if it passes."""
    final = output_path(source, opts.out, precision, row.suffix, dynamic=opts.dynamic, head=opts.head)
    job = make_job(source, opts, precision, final.parent, traced)
    result = Attempt(precision, final, notes=job.report)
    start = time.perf_counter()
    try:
        with atomic_path(final) as tmp:
            try:
                _write(row, job, tmp)
                result.seconds = time.perf_counter() - start
                result.size_mb = sum(p.stat().st_size for p in [tmp, *(companion(tmp, s) for s in row.companions)]
                                     if p.is_file()) / 1e6
                if opts.verify:
                    result.checks = verify(row, job, tmp, source)
                if not all(c.passed for c in result.checks):
                    raise _Rejected
                for s in row.companions:
                    os.replace(companion(tmp, s), companion(final, s))
            finally:
                for s in row.companions:
                    companion(tmp, s).unlink(missing_ok=True)
    except _Rejected:
        return result
    result.kept = True
    return result


def check_arch_exports(source: Source, fmt: str) -> None:
    """A registered arch lists the formats it exports to (ArchSpec.export_formats); others are refused up front."""
    from segx.models import get_arch, list_archs

    if source.meta.arch in list_archs():
        formats = get_arch(source.meta.arch).export_formats
        if fmt not in formats:
            raise SegxError(f"arch '{source.meta.arch}' does not export to '{fmt}' (it exports to: "
                            f"{', '.join(formats)})")


def run(row: Format, model: object, options: dict[str, object]) -> ExportResult:
    """Validate, load, then try the requested precision and (when verifying) its fall-backs until one passes."""
    opts = validate_options(row.key, row.options, options)
    if row.check is not None:
        row.check()
    if opts.data is not None:
        from segx.data.voc import VOCSegmentation

        VOCSegmentation(opts.data, opts.split)  # a bad --data / --split is a user error now, not a fall-back later
    source = load_source(model)  # type: ignore[arg-type]
    check_arch_exports(source, row.base or row.key)
    check_writable(output_path(source, opts.out, "fp32", row.suffix, dynamic=opts.dynamic, head=opts.head).parent)
    # fall back only to precisions the format can build and lists as fall-backs (ONNX: int8 -> fp32)
    plan = tuple(p for p in FALLBACK[opts.precision] if p == opts.precision or p in row.fallbacks and
                 (p == "fp32" or p in row.options)) if opts.verify else (opts.precision,)
    attempts: list[Attempt] = []
    traced: dict[object, object] = {}
    for precision in plan:
        try:
            result = attempt(row, source, opts, precision, traced)
        except SegxError as e:
            if precision == "fp32":
                raise
            result = Attempt(precision, output_path(source, opts.out, precision, row.suffix, dynamic=opts.dynamic,
                                                    head=opts.head), error=str(e))
            log.warning("%s %s could not be built: %s", row.key, precision, e)
        attempts.append(result)
        if result.kept:
            break
        if precision != plan[-1]:
            log.warning("%s %s did not pass (%s); trying %s", row.key, precision, result.reason,
                        plan[plan.index(precision) + 1])
    return ExportResult(row.key, opts.precision, attempts, opts.verify)
