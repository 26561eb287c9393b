"""Input sources for predict: image files, folders, globs, video files (every frame, in order) and live webcams /
streams (read in a thread that keeps only the newest frame). Each yields `Frame`s of RGB uint8 pixels."""
from __future__ import annotations

import glob
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from segx.data.voc import MAX_PIXELS, read_image
from segx.errors import SegxError

log = logging.getLogger(__name__)
# FFmpeg inside OpenCV prints its own lines for a corrupt video ("moov atom not found"); segx reports the file in one
# line instead. Read once, when OpenCV first opens a video; set OPENCV_FFMPEG_LOGLEVEL to see FFmpeg's messages.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".gif")
STREAM_RE = re.compile(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp|srt)://", re.IGNORECASE)


@dataclass
class Frame:
    image: np.ndarray        # H x W x 3 RGB uint8
    name: str                # output stem (file stem, "webcam0", stream name)
    index: int               # frame index within its source (0 for a still image)
    fps: float               # source frame rate (0 for still images)
    total: int | None        # frames in this source when known
    kind: str                # "image" | "video" | "live"


class Source:
    """Base: iterate Frames; `total` = frames expected over the whole source (None = unknown/live);
    `skipped` lists (path, reason) for inputs that could not be read."""

    kind = "image"

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.total: int | None = None
        self.skipped: list[tuple[str, str]] = []
        self._stop = threading.Event()

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def stop(self) -> None:
        """Ask the source to end (from another thread): live readers stop, file readers end after the frame."""
        self._stop.set()

    def close(self) -> None:
        self.stop()


def _unique_names(paths: list[Path]) -> list[str]:
    """Output stems for a list of files; a repeated stem (a.jpg, a.png) gets its suffix appended (a_png)."""
    names: list[str] = []
    seen: set[str] = set()
    for p in paths:
        name = p.stem
        if name in seen:
            name = f"{p.stem}_{p.suffix.lstrip('.').lower()}"
        i = 1
        while name in seen:
            name, i = f"{p.stem}_{i}", i + 1
        seen.add(name)
        names.append(name)
    return names


def read_still(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read one image as RGB uint8, refusing images above `max_pixels` before decoding them (segx.data.voc's guard)."""
    return read_image(path, max_pixels)


class ImageFiles(Source):
    """Still images, in the given (sorted) order; an unreadable one is skipped with a warning."""

    kind = "image"

    def __init__(self, spec: str, paths: list[Path], max_pixels: int = MAX_PIXELS) -> None:
        super().__init__(spec)
        self.paths = paths
        self.names = _unique_names(paths)
        self.total = len(paths)
        self.max_pixels = max_pixels

    def __iter__(self) -> Iterator[Frame]:
        for path, name in zip(self.paths, self.names):
            if self._stop.is_set():
                return
            try:
                image = read_still(path, self.max_pixels)
            except SegxError as e:
                if self.total > 1:  # a lone image that fails is the run's one error line, not a warning too
                    log.warning("skipped %s", e)
                self.skipped.append((str(path), str(e)))
                continue
            yield Frame(image, name, 0, 0.0, 1, "image")


def _open_capture(target: int | str) -> Any:
    """cv2.VideoCapture without OpenCV's own WARN lines (a failure gets one segx message instead)."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        return cv2.VideoCapture(target)
    finally:
        cv2.utils.logging.setLogLevel(level)


def _capture_info(cap: Any) -> tuple[float, int | None]:
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else 30.0
    n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return fps, (int(n) if n and np.isfinite(n) and n > 0 else None)


class VideoFile(Source):
    """Every frame of a video file, in order (none dropped)."""

    kind = "video"

    def __init__(self, spec: str, path: Path, max_pixels: int = MAX_PIXELS) -> None:
        super().__init__(spec)
        self.path = path
        if path.stat().st_size == 0:
            raise SegxError(f"{path}: empty video file (0 bytes)")
        cap = _open_capture(str(path))
        try:
            if not cap.isOpened():
                raise SegxError(f"{path}: cannot open video (unsupported codec or corrupt file)")
            self.fps, self.total = _capture_info(cap)
            w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        finally:
            cap.release()
        if w * h > max_pixels:  # the same guard as still images, from the container's header
            raise SegxError(f"{path}: frames of {w}×{h} = {w * h / 1e6:.0f} MP are above the {max_pixels / 1e6:.0f} "
                            f"MP limit (decompression-bomb guard); resize the video first")

    def __iter__(self) -> Iterator[Frame]:
        cap = _open_capture(str(self.path))
        i = 0
        try:
            while not self._stop.is_set():
                ok, bgr = cap.read()
                if not ok:
                    break
                yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.path.stem, i, self.fps, self.total, "video")
                i += 1
        finally:
            cap.release()
        if self._stop.is_set():
            return
        if i == 0:
            raise SegxError(f"{self.path}: no frame could be decoded (corrupt video or unsupported codec)")
        if self.total is not None and i < self.total:
            log.warning("%s: decoding stopped at frame %d of %d (truncated or corrupt video?)", self.path, i,
                        self.total)


def _stream_name(spec: str) -> str:
    if spec.isdigit():
        return f"webcam{spec}"
    tail = spec.split("://", 1)[-1].split("?", 1)[0].rstrip("/")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", tail.rsplit("/", 1)[-1] or tail).strip("._")
    return Path(name).stem or "stream"


class LiveStream(Source):
    """A webcam or network stream: a thread reads continuously and keeps only the newest frame, so a slow model
    never builds up lag; a dropped stream is reopened `reconnects` times, then the source ends with a warning."""

    kind = "live"

    def __init__(self, spec: str, target: int | str, reconnects: int = 3, retry_delay: float = 1.0,
                 open_capture: Callable[[int | str], Any] = _open_capture) -> None:
        super().__init__(spec)
        self.name = _stream_name(spec)
        self.target, self.reconnects, self.retry_delay = target, reconnects, retry_delay
        self._open = open_capture
        self._cap = open_capture(target)
        if not self._cap.isOpened():
            self._cap.release()
            what = f"webcam {target} does not open (is a camera attached at that index?)" if isinstance(
                target, int) else f"{spec}: cannot open stream (check the URL and that the server is up)"
            raise SegxError(what)
        self.fps, _ = _capture_info(self._cap)
        self._cond = threading.Condition()
        self._latest = np.zeros((1, 1, 3), np.uint8)  # replaced by the first frame read
        self._seq = 0
        self._done = False

    def _read_loop(self) -> None:
        failures = 0
        try:
            while not self._stop.is_set():
                ok, bgr = self._cap.read()
                if ok:
                    failures = 0
                    with self._cond:
                        self._latest, self._seq = bgr, self._seq + 1
                        self._cond.notify_all()
                    continue
                if failures >= self.reconnects:
                    log.warning("%s: stream ended or dropped; gave up after %d reconnect attempts", self.spec,
                                self.reconnects)
                    break
                failures += 1
                log.warning("%s: no frame; reconnecting (%d/%d)", self.spec, failures, self.reconnects)
                self._cap.release()
                if self._stop.wait(self.retry_delay):
                    break
                self._cap = self._open(self.target)
        finally:
            self._cap.release()
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _news(self, seen: int) -> Callable[[], bool]:
        """Condition: a frame newer than `seen` arrived, or the reader finished, or a stop was asked."""
        return lambda: self._seq != seen or self._done or self._stop.is_set()

    def __iter__(self) -> Iterator[Frame]:
        reader = threading.Thread(target=self._read_loop, name="segx-live-reader", daemon=True)
        reader.start()
        seen, i = 0, 0
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(self._news(seen), timeout=1.0)
                    if self._seq == seen:
                        if self._done or self._stop.is_set():
                            return
                        continue
                    bgr, seen = self._latest, self._seq
                yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.name, i, self.fps, None, "live")
                i += 1
        finally:
            self._stop.set()
            reader.join(timeout=5.0)


def _image_list(spec: str, paths: list[Path], max_pixels: int) -> ImageFiles:
    images = sorted(p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise SegxError(f"{spec}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return ImageFiles(spec, images, max_pixels)


def open_source(spec: str | int | Path, *, max_pixels: int = MAX_PIXELS, reconnects: int = 3) -> Source:
    """Pick the source type for SOURCE: webcam index, stream URL, folder, glob, image file or video file."""
    text = str(spec).strip()
    if text.isdigit():
        return LiveStream(text, int(text), reconnects)
    if STREAM_RE.match(text):
        return LiveStream(text, text, reconnects)
    path = Path(text).expanduser()
    if path.is_dir():
        return _image_list(text, list(path.iterdir()), max_pixels)
    if not path.exists() and any(c in text for c in "*?["):
        return _image_list(text, [Path(p) for p in glob.glob(str(path), recursive=True)], max_pixels)
    if not path.exists():
        raise SegxError(f"{text}: no such file or directory")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return ImageFiles(text, [path], max_pixels)
    if suffix in VIDEO_SUFFIXES:
        return VideoFile(text, path, max_pixels)
    raise SegxError(f"{text}: unknown input type '{suffix or '(none)'}'; predict reads images "
                    f"({', '.join(IMAGE_SUFFIXES)}), videos ({', '.join(VIDEO_SUFFIXES)}), folders, globs, "
                    f"webcam indexes and rtsp/rtmp/http URLs")
