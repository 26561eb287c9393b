"""The predict pipeline: a reader thread (decode + pre-process) -> an inference thread -> a post-processing thread
(mask, regions, overlay) -> the caller, joined by bounded queues so decoding, inference and drawing overlap.
`PredictRun` is the iterator of `Result`s that `segx.predict.predict()` returns and the CLI drives."""
from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from segx.runtimes.base import Runtime
from segx.errors import SegxError
from segx.predict.overlay import palette_lut, render
from segx.predict.frames import Output, run_model, to_frame
from segx.predict.preprocess import Letterbox, check_model, plan_letterbox, size_multiple, to_input
from segx.predict.regions import Region, find_regions
from segx.predict.sources import Frame, Source

log = logging.getLogger(__name__)

_END = object()
_POLL_S = 0.1


@dataclass
class Result:
    """One segmented frame. `mask` and `overlay` are at the source frame's size."""

    mask: np.ndarray                  # H×W uint8 class ids
    regions: list[Region]             # connected regions per class (background left out unless asked)
    overlay: np.ndarray | None        # H×W×3 RGB uint8 picture (None when overlay=False)
    image: np.ndarray                 # the input frame, H×W×3 RGB uint8
    source: str                       # output stem: file stem, "webcam0", stream name
    frame_index: int                  # 0 for a still image
    kind: str                         # "image" | "video" | "live"
    fps: float                        # the source's frame rate (0 for images)
    confidence: np.ndarray | None = None     # H×W max softmax probability (confidence=True)
    probabilities: np.ndarray | None = None  # C×H×W softmax (probabilities=True)


@dataclass(frozen=True)
class PredictOptions:
    imgsz: int | None = None          # dynamic-shape models: scale the long side down to this (None = native size)
    alpha: float = 0.5                # overlay opacity of class colours
    boundaries: bool = True           # draw region contours on the overlay
    overlay: bool = True              # render the overlay picture
    confidence: bool = True           # per-pixel confidence and each region's mean confidence
    probabilities: bool = False       # keep the full C×H×W softmax in each Result (memory heavy)
    include_background: bool = False  # list background regions too
    min_area: int = 1                 # smaller regions are left out of `regions`
    max_frames: int | None = None     # stop after this many frames (streams, quick looks)
    queue_size: int = 4

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise SegxError(f"alpha must be between 0 and 1, got {self.alpha}")
        for name in ("imgsz", "max_frames"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SegxError(f"{name} must be a positive integer, got {value}")
        if self.min_area < 1 or self.queue_size < 1:
            raise SegxError("min_area and queue_size must be at least 1")


class _Failed:
    """An exception raised in a worker thread, carried to the caller through the queues."""

    def __init__(self, stage: str, error: BaseException) -> None:
        self.stage, self.error = stage, error

    def reraise(self) -> None:
        e = self.error
        if isinstance(e, (SegxError, KeyboardInterrupt)):
            raise e
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise SegxError(f"predict {self.stage} failed: {type(e).__name__}: {first}") from e


class PredictRun:
    """Iterator of Results over a source; also a context manager. Threads start on the first `next()`;
    `close()` (or the end of the source) stops them and, when predict() opened the model, closes it."""

    def __init__(self, source: Source, runtime: Runtime, options: PredictOptions, *, own_runtime: bool) -> None:
        check_model(runtime.input_shape, runtime.meta, str(runtime.model_path))
        if options.imgsz is not None and runtime.fixed_hw is not None:
            log.warning("%s takes %dx%d images only (a fixed-shape export): --imgsz %d is ignored; export with "
                        "--dynamic to choose the size", runtime.model_path.name, *runtime.fixed_hw, options.imgsz)
        self.source, self.runtime, self.options = source, runtime, options
        self.meta = runtime.meta
        self.total = source.total if options.max_frames is None else min(source.total or options.max_frames,
                                                                        options.max_frames)
        self.frames = 0
        self._own_runtime = own_runtime
        self._stop = threading.Event()
        self._lut = palette_lut(self.meta.palette)
        self._multiple = size_multiple(self.meta) if runtime.fixed_hw is None else 1
        self._times: collections.deque[float] = collections.deque(maxlen=30)
        self._released = False
        self._gen = self._run()

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(input, reason) for every input that could not be read."""
        return self.source.skipped

    def __iter__(self) -> PredictRun:
        return self

    def __next__(self) -> Result:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()
        self._release([])  # also when iteration never started

    def __enter__(self) -> PredictRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the threads ---------------------------------------------------------------------------------------------
    def _put(self, q: queue.Queue, item: Any) -> None:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _get(self, q: queue.Queue) -> Any:
        while not self._stop.is_set():
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        return _END

    def _worker(self, stage: str, body: Callable[[], None], out: queue.Queue) -> threading.Thread:
        def run() -> None:
            try:
                body()
            except BaseException as e:  # noqa: BLE001 - carried to the caller's thread and re-raised there
                self._put(out, _Failed(stage, e))
        return threading.Thread(target=run, name=f"segx-predict-{stage}", daemon=True)

    def _read(self, out: queue.Queue) -> None:
        boxes: dict[tuple[int, int], Letterbox] = {}
        meta, limit = self.meta, self.options.max_frames
        for n, frame in enumerate(self.source):
            if self._stop.is_set() or (limit is not None and n >= limit):
                break
            hw = frame.image.shape[:2]
            if hw not in boxes:
                boxes[hw] = plan_letterbox(hw, self.runtime.fixed_hw, multiple=self._multiple,
                                           max_side=self.options.imgsz)
            self._put(out, (frame, boxes[hw], to_input(frame.image, boxes[hw], meta.mean, meta.std)))
        self._put(out, _END)

    def _infer(self, inp: queue.Queue, out: queue.Queue) -> None:
        while (item := self._get(inp)) is not _END:
            if isinstance(item, _Failed):
                break
            frame, box, x = item
            output = run_model(self.runtime, x[None], confidence=self.options.confidence)
            if self.meta.head == "logits":
                self._check_logits(output[0][None], box)
            self._put(out, (frame, box, output[0]))
        self._put(out, item)

    def _post(self, inp: queue.Queue, out: queue.Queue) -> None:
        while (item := self._get(inp)) is not _END:
            if isinstance(item, _Failed):
                break
            self._put(out, self._finish(*item))
        self._put(out, item)

    # -- per frame -----------------------------------------------------------------------------------------------
    def _check_logits(self, logits: np.ndarray, box: Letterbox) -> None:
        want = (1, self.meta.num_classes, *box.input_hw)
        if logits.shape != want:
            raise SegxError(f"{self.runtime.model_path}: model returned logits {logits.shape}, expected {want} "
                            f"(the model's metadata says {self.meta.num_classes} classes; was it exported by segx?)")

    def _finish(self, frame: Frame, box: Letterbox, output: Output) -> Result:
        o = self.options
        mask, conf, probs = to_frame(output, box, want_conf=o.confidence, want_probs=o.probabilities)
        regions = find_regions(mask, self.meta.classes, conf, include_background=o.include_background,
                               min_area=o.min_area)
        self._times.append(time.perf_counter())
        fps = (len(self._times) - 1) / (self._times[-1] - self._times[0]) if len(self._times) > 1 else None
        overlay = render(frame.image, mask, regions, self.meta.classes, self._lut, alpha=o.alpha,
                         boundaries=o.boundaries, fps=fps if frame.kind != "image" else None) if o.overlay else None
        return Result(mask, regions, overlay, frame.image, frame.name, frame.index, frame.kind, frame.fps, conf, probs)

    # -- the caller's side ---------------------------------------------------------------------------------------
    def _run(self) -> Generator[Result, None, None]:
        size = self.options.queue_size
        q_in: queue.Queue = queue.Queue(size)
        q_mid: queue.Queue = queue.Queue(size)
        q_out: queue.Queue = queue.Queue(size)
        threads = [self._worker("reader", lambda: self._read(q_in), q_in),
                   self._worker("inference", lambda: self._infer(q_in, q_mid), q_mid),
                   self._worker("post-processing", lambda: self._post(q_mid, q_out), q_out)]
        for t in threads:
            t.start()
        try:
            while (item := self._get(q_out)) is not _END:
                if isinstance(item, _Failed):
                    item.reraise()
                self.frames += 1
                yield item
            if self.frames == 0:
                why = f": {self.skipped[0][1]}" if self.skipped else ""
                raise SegxError(f"{self.source.spec}: nothing could be read{why}")
        finally:
            self._release(threads)

    def _release(self, threads: list[threading.Thread]) -> None:
        """Stop the threads and the source; close the runtime if predict() opened it. Safe to call twice."""
        self._stop.set()
        self.source.close()
        for t in threads:
            t.join(timeout=10.0)
        if self._own_runtime and not self._released:
            self.runtime.close()
        self._released = True
