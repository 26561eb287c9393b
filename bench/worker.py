"""Subprocess entry point of one bench row: `python -m bench.worker '<json spec>'` loads one runtime, measures its
speed (and parity against the torch fp32 reference when the spec names data) and prints ONE JSON line on stdout.
Anything else the libraries print goes to stderr; on failure the last stderr line is the reason."""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any

RESULT_KEY = "bench_result"


def _parity(candidate: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """check_parity of the candidate against the torch fp32 reference of the same checkpoint."""
    from segx.parity import check_parity
    from segx.runtimes import load_runtime

    p = spec["parity"]
    with load_runtime(p["reference"], "torch", precision="fp32", device=spec["device"],
                      threads=spec.get("threads")) as ref:
        r = check_parity(ref, candidate, data=p["data"], split=p["split"], n=p["n"], imgsz=spec["imgsz"])
    return {"miou": r.miou, "miou_ref": r.miou_ref, "miou_delta": r.miou_delta, "pixel_agreement": r.pixel_agreement,
            "max_abs_logit_diff": r.max_abs_diff, "mean_abs_logit_diff": r.mean_abs_diff,
            "parity_images": r.n_images, "parity_passed": bool(r.passed), "parity_reason": r.reason,
            "drop_ci": r.drop_ci}


def run_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Load the runtime the spec names, time it, optionally check parity; returns the result fields."""
    from segx.runtimes import RuntimeUnavailable, load_runtime
    from bench.speed import SpeedConfig, make_batch, measure
    from segx.errors import SegxError

    t0 = time.perf_counter()
    try:
        head = {"head": spec["head"]} if spec["runtime"] in ("torch", "compile") else {}  # others: in the file
        rt = load_runtime(spec["model"], spec["runtime"], precision=spec["precision"], device=spec["device"],
                          threads=spec.get("threads"), **head)
    except RuntimeUnavailable as e:
        return {"status": "skipped", "error": str(e)}
    with rt:
        load_s = time.perf_counter() - t0
        hw = rt.fixed_hw or (spec["imgsz"], spec["imgsz"])
        fixed_n = rt.input_shape[0]
        if fixed_n is not None and fixed_n != spec["batch"]:
            raise SegxError(f"{spec['model']} takes batch {fixed_n} only, not {spec['batch']} (export it dynamic)")
        speed = measure(rt, make_batch(spec["batch"], hw), SpeedConfig(**spec.get("speed", {})),
                        to_mask=spec.get("to_mask", False))
        result: dict[str, Any] = {"status": "ok", "load_s": load_s, "threads": spec.get("threads"),
                                  "input_hw": list(hw), **speed.to_dict()}
        if spec.get("parity"):
            result.update(_parity(rt, spec))
    return result


def _one_line(e: BaseException) -> str:
    """The reason a row failed, in one line: a SegxError's own message, else 'Type: message'."""
    from segx.errors import SegxError

    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, SegxError) and msg:
        return msg
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m bench.worker '<json spec>'", file=sys.stderr)
        return 2
    # keep stdout for the one result line: whatever the libraries print goes to stderr instead
    sys.stdout.flush()
    result_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        result = run_spec(json.loads(argv[0]))
    except BaseException as e:  # noqa: BLE001 - the subprocess boundary: report, never hang
        traceback.print_exc(file=sys.stderr)
        print(_one_line(e), file=sys.stderr, flush=True)
        return 1
    sys.stdout.flush()
    os.write(result_fd, (json.dumps({RESULT_KEY: result}) + "\n").encode())
    os.close(result_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
