"""Where predict results go: overlay images (DIR/<stem>.jpg) and videos (DIR/<stem>.mp4), VOC palette masks
(DIR/masks/), region JSON (DIR/regions/), written by a background thread. Every file is written under a temp name and
renamed when complete, so an interrupted run still leaves playable videos and valid JSON; `--show` windows too."""
from __future__ import annotations

import contextlib
import json
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import cv2

from segx.errors import SegxError
from segx.io import atomic_path, atomic_write_bytes, atomic_write_json
from segx.predict.pipeline import Result

_END = object()
GUI_HINT = "--show needs OpenCV with GUI support: pip install opencv-python (instead of opencv-python-headless)"


def new_run_dir(root: str | Path = "runs/predict") -> Path:
    """A new numbered folder root/N (1, 2, ...) that did not exist before: runs never overwrite each other."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    n = max((int(p.name) for p in root.iterdir() if p.name.isdigit()), default=0) + 1
    while True:
        try:
            (root / str(n)).mkdir()
            return root / str(n)
        except FileExistsError:
            n += 1


class _Stream:
    """The open outputs of one video/live source: an mp4 and a JSON list, each on a temp name until close()."""

    def __init__(self, out: Path, result: Result, *, video: bool, regions: bool) -> None:
        self._stack = contextlib.ExitStack()
        self.video: Any = None
        self.json: IO[str] | None = None
        self._first = True
        if video:
            path = out / f"{result.source}.mp4"
            h, w = result.mask.shape
            tmp = self._stack.enter_context(atomic_path(path))
            self.video = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), result.fps or 30.0, (w, h))
            if not self.video.isOpened():
                self._stack.close()
                raise SegxError(f"{path}: OpenCV cannot write mp4v video here (check disk space and permissions)")
            self._stack.callback(self.video.release)  # released before the rename (LIFO)
        if regions:
            tmp = self._stack.enter_context(atomic_path(out / "regions" / f"{result.source}.json"))
            fh = self._stack.enter_context(open(tmp, "w", encoding="utf-8"))
            fh.write("[\n")
            self._stack.callback(fh.write, "\n]\n")
            self.json = fh

    def write(self, result: Result, entry: dict[str, Any] | None) -> None:
        if self.video is not None and result.overlay is not None:
            self.video.write(cv2.cvtColor(result.overlay, cv2.COLOR_RGB2BGR))
        if self.json is not None and entry is not None:
            self.json.write(("" if self._first else ",\n") + json.dumps(entry))
            self._first = False

    def close(self) -> None:
        self._stack.close()


@dataclass
class WriteSummary:
    out: Path
    files: list[Path] = field(default_factory=list)


class OutputWriter:
    """Consumes Results on a background thread (so encoding overlaps inference) and writes what was asked."""

    def __init__(self, out: str | Path, *, overlays: bool = True, masks: bool = False, regions: bool = False,
                 queue_size: int = 8) -> None:
        self.out = Path(out)
        self.overlays, self.masks, self.regions = overlays, masks, regions
        self.summary = WriteSummary(self.out)
        self._queue: queue.Queue = queue.Queue(queue_size)
        self._streams: dict[str, _Stream] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="segx-predict-writer", daemon=True)
        self._thread.start()

    def submit(self, result: Result) -> None:
        """Queue a result for writing (blocks when the writer is behind); raises if the writer has failed."""
        self._raise_if_failed()
        while self._thread.is_alive():
            try:
                self._queue.put(result, timeout=0.1)
                return
            except queue.Full:
                continue
        self._raise_if_failed()

    def close(self) -> WriteSummary:
        """Write everything queued, finalise open videos / JSON lists, then raise any writer error."""
        while self._thread.is_alive():
            try:
                self._queue.put(_END, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join()
        self._raise_if_failed()
        return self.summary

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            e = self._error
            if isinstance(e, SegxError):
                raise e
            first = (str(e).strip().splitlines() or [""])[0]
            raise SegxError(f"writing results to {self.out} failed: {type(e).__name__}: {first}") from e

    def _loop(self) -> None:
        try:
            while (result := self._queue.get()) is not _END:
                self._write(result)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            self._error = e
        finally:
            self._close_streams()

    def _close_streams(self, keep: str | None = None) -> None:
        for name in [n for n in self._streams if n != keep]:
            stream = self._streams.pop(name)
            try:
                stream.close()
            except Exception as e:  # noqa: BLE001 - keep closing the others; report the first failure
                self._error = self._error or e
                continue
            if stream.video is not None:
                self.summary.files.append(self.out / f"{name}.mp4")
            if stream.json is not None:
                self.summary.files.append(self.out / "regions" / f"{name}.json")

    def _write(self, r: Result) -> None:
        entry = _regions_entry(r) if self.regions else None
        if self.masks:
            from segx.data.voc import write_mask

            suffix = "" if r.kind == "image" else f"_{r.frame_index:06d}"
            self.summary.files.append(write_mask(self.out / "masks" / f"{r.source}{suffix}.png", r.mask))
        if r.kind == "image":
            if self.overlays and r.overlay is not None:
                ok, buf = cv2.imencode(".jpg", cv2.cvtColor(r.overlay, cv2.COLOR_RGB2BGR),
                                       [cv2.IMWRITE_JPEG_QUALITY, 95])
                if not ok:
                    raise SegxError(f"{r.source}: OpenCV could not encode the overlay as JPEG")
                self.summary.files.append(atomic_write_bytes(self.out / f"{r.source}.jpg", buf.tobytes()))
            if entry is not None:
                self.summary.files.append(atomic_write_json(self.out / "regions" / f"{r.source}.json", entry))
            return
        self._close_streams(keep=r.source)  # sources are read one after another
        if r.source not in self._streams:
            self._streams[r.source] = _Stream(self.out, r, video=self.overlays, regions=self.regions)
        self._streams[r.source].write(r, entry)


def _regions_entry(r: Result) -> dict[str, Any]:
    h, w = r.mask.shape
    head: dict[str, Any] = {"source": r.source, "width": w, "height": h}
    if r.kind != "image":
        head = {"frame": r.frame_index, "time_s": round(r.frame_index / r.fps, 4) if r.fps else None}
    return {**head, "regions": [reg.to_dict() for reg in r.regions]}


class Window:
    """A cv2 window showing overlays (`--show`); refuses at once, with the fix, on a headless OpenCV build."""

    def __init__(self, title: str = "segx predict") -> None:
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as e:
            raise SegxError(GUI_HINT) from e

    def show(self, image_rgb: Any) -> bool:
        """Display a frame; False once the user pressed q or Esc."""
        cv2.imshow(self.title, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        cv2.destroyWindow(self.title)
