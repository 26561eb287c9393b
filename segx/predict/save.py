"""`predict_to_dir`: run segx.predict over a source and write overlays / masks / region JSON into a folder, with a
progress bar and a clean Ctrl-C; the one loop behind `segx predict` and the demo."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from rich.progress import TextColumn

from segx.log import progress

log = logging.getLogger("segx.predict")


def predict_to_dir(source: str | int | Path, model: str | Path | Any, out: str | Path | None = None, *,
                   save_masks: bool = False, save_json: bool = False, show: bool = False,
                   show_progress: bool = True, **predict_kw: Any) -> dict[str, Any]:
    """Segment `source` with `model`, writing into `out` (default runs/predict/N, new each run).

    Returns {"out", "frames", "seconds", "fps", "skipped", "interrupted", "runtime"}. Ctrl-C stops reading, writes
    what was segmented (videos stay playable) and returns with interrupted=True."""
    from segx.predict.run import predict
    from segx.predict.writers import OutputWriter, Window, new_run_dir

    window = Window() if show else None
    predict_kw.setdefault("confidence", save_json)
    run = predict(source, model, **predict_kw)
    out_dir = Path(out) if out is not None else new_run_dir()
    writer = OutputWriter(out_dir, overlays=True, masks=save_masks, regions=save_json)
    interrupted, start = False, time.perf_counter()
    try:
        bar = progress(TextColumn("{task.fields[fps]:.1f} FPS"))
        bar.disable = bar.disable or not show_progress
        with bar:
            task = bar.add_task(f"predict {source}", total=run.total, fps=0.0)
            for r in run:
                writer.submit(r)
                bar.update(task, advance=1, fps=run.frames / max(time.perf_counter() - start, 1e-9))
                if window is not None and not window.show(r.overlay):
                    break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        run.close()
        if window is not None:
            window.close()
        summary = writer.close()
        if out is None and run.frames == 0 and not any(out_dir.iterdir()):
            out_dir.rmdir()
    seconds = time.perf_counter() - start
    skipped = run.skipped
    if skipped:
        log.warning("skipped %d unreadable input(s): %s", len(skipped),
                    "; ".join(str(p) for p, _ in skipped[:5]) + (" ..." if len(skipped) > 5 else ""))
    if interrupted:
        log.warning("interrupted after %d frame(s); the files written so far are complete", run.frames)
    log.info("segmented %d frame(s) in %.1f s (%.1f FPS) with %s", run.frames, seconds,
             run.frames / max(seconds, 1e-9), run.runtime.describe())
    return {"out": str(summary.out), "frames": run.frames, "seconds": round(seconds, 3),
            "fps": round(run.frames / max(seconds, 1e-9), 2), "skipped": [str(p) for p, _ in skipped],
            "interrupted": interrupted, "runtime": run.runtime.describe()}
