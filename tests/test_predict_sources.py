"""Input sources: which type a SOURCE string opens, image lists (order, names, corrupt files, size guard), video files
(every frame in order) and live streams (newest frame only, reconnects) with a fake capture."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_predict_pipeline import scene, write_png, write_video

from segx.errors import SegxError
from segx.predict.sources import ImageFiles, LiveStream, VideoFile, open_source


class FakeCapture:
    """Stands in for cv2.VideoCapture: frames whose pixels hold their number; read() takes `delay` seconds."""

    def __init__(self, values: list[int], opened: bool = True, delay: float = 0.0) -> None:
        self.values, self.opened, self.delay = list(values), opened, delay

    def isOpened(self) -> bool:  # noqa: N802 - cv2's name
        return self.opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        time.sleep(self.delay)
        if not self.opened or not self.values:
            return False, None
        return True, np.full((4, 6, 3), self.values.pop(0), np.uint8)

    def get(self, prop: int) -> float:
        return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        self.opened = False


def test_folder_is_sorted_images_only_with_unique_names(tmp_path: Path) -> None:
    for name in ("b.png", "a.png", "a.jpg", "c.txt"):
        write_png(tmp_path / name, scene()) if name.endswith("png") else (tmp_path / name).write_text("x")
    cv2.imwrite(str(tmp_path / "a.jpg"), scene())
    src = open_source(tmp_path)
    assert isinstance(src, ImageFiles) and src.total == 3
    frames = list(src)
    assert [f.name for f in frames] == ["a", "a_png", "b"]
    assert all(f.kind == "image" and f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)


def test_image_is_rgb(tmp_path: Path) -> None:
    img = scene()
    (frame,) = open_source(write_png(tmp_path / "x.png", img))
    np.testing.assert_array_equal(frame.image, img)


def test_glob_and_missing_inputs(tmp_path: Path) -> None:
    for i in range(3):
        write_png(tmp_path / f"s{i}.png", scene())
    assert [f.name for f in open_source(str(tmp_path / "s[02].png"))] == ["s0", "s2"]
    with pytest.raises(SegxError, match="no images found"):
        open_source(str(tmp_path / "*.jpg"))
    with pytest.raises(SegxError, match="nope.png: no such file or directory"):
        open_source(tmp_path / "nope.png")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SegxError, match="unknown input type '.txt'"):
        open_source(tmp_path / "notes.txt")


def test_corrupt_and_oversized_images_are_skipped(tmp_path: Path) -> None:
    write_png(tmp_path / "big.png", scene(96, 128))
    write_png(tmp_path / "ok.png", scene())
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "trash.jpg").write_bytes(b"\xff\xd8 not really")
    src = open_source(tmp_path, max_pixels=64 * 48)
    assert [f.name for f in src] == ["ok"]
    reasons = dict(src.skipped)
    assert "above the 0 MP limit" in reasons[str(tmp_path / "big.png")]
    assert "0 bytes" in reasons[str(tmp_path / "zero.png")]
    assert "unreadable image" in reasons[str(tmp_path / "trash.jpg")]


def test_video_file_every_frame_in_order(tmp_path: Path) -> None:
    write_video(tmp_path / "v.avi", n=7, fps=15.0)
    src = open_source(tmp_path / "v.avi")
    assert isinstance(src, VideoFile) and src.total == 7 and src.fps == pytest.approx(15.0)
    frames = list(src)
    assert [f.index for f in frames] == list(range(7)) and {f.name for f in frames} == {"v"}
    red = [np.nonzero((f.image[..., 0] > 150) & (f.image[..., 2] < 100))[1].mean() for f in frames]
    assert np.allclose(np.diff(red), 1.0, atol=0.3)  # the red block moves 1 px per frame: none dropped or swapped


def test_webcam_and_stream_that_do_not_open() -> None:
    with pytest.raises(SegxError, match="webcam 3 does not open"):
        LiveStream("3", 3, open_capture=lambda t: FakeCapture([], opened=False))
    with pytest.raises(SegxError, match="rtsp://cam/x: cannot open stream"):
        LiveStream("rtsp://cam/x", "rtsp://cam/x", open_capture=lambda t: FakeCapture([], opened=False))


def test_live_source_keeps_only_the_newest_frame() -> None:
    src = LiveStream("0", 0, reconnects=0, open_capture=lambda t: FakeCapture(list(range(1, 101)), delay=0.002))
    seen = []
    for f in src:
        seen.append(int(f.image[0, 0, 0]))
        time.sleep(0.02)  # a slow model
    assert f.kind == "live" and f.name == "webcam0" and f.total is None
    assert seen == sorted(set(seen)) and seen[-1] == 100  # in order, the latest frame reached ...
    assert len(seen) < 60  # ... by skipping stale ones instead of queueing them


def test_live_source_reconnects_then_stops(caplog: pytest.LogCaptureFixture) -> None:
    caps = iter([FakeCapture([1, 2, 3], delay=0.01), FakeCapture([4, 5], delay=0.01),
                 FakeCapture([], opened=False), FakeCapture([], opened=False), FakeCapture([], opened=False)])
    opened = []
    src = LiveStream("rtsp://cam/live", "rtsp://cam/live", reconnects=2, retry_delay=0.0,
                     open_capture=lambda t: opened.append(t) or next(caps))
    seen = [int(f.image[0, 0, 0]) for f in src]
    assert seen[-1] == 5 and 4 in seen  # frames after the first drop came from the reopened stream
    assert len(opened) == 4  # the first open, one reconnect that worked, two that did not
    assert "gave up after 2 reconnect attempts" in caplog.text
    assert src.name == "live"


def test_stopping_a_live_source_ends_its_thread() -> None:
    src = LiveStream("0", 0, open_capture=lambda t: FakeCapture(list(range(10_000)), delay=0.001))
    before = threading.active_count()
    it = iter(src)
    next(it)
    src.stop()
    assert len(list(it)) <= 1  # at most the frame already read
    assert threading.active_count() == before
