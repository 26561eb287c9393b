"""predict's Python API end to end with a stand-in Runtime whose 'model' is a colour rule (red -> person, blue ->
car), so the true mask of every frame is known: results, letterbox vs native size, errors, early close."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from segx.predict import predict
from segx.runtimes.base import Runtime
from segx.errors import SegxError
from segx.meta import ModelMeta

PERSON, CAR = 15, 7


def colour_rule(rgb: np.ndarray) -> np.ndarray:
    """The stand-in model's ground truth: red -> person, blue -> car, else background (uint8 H×W)."""
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    mask = np.zeros(rgb.shape[:2], np.uint8)
    mask[(r > 150) & (g < 100) & (b < 100)] = PERSON
    mask[(b > 150) & (r < 100) & (g < 100)] = CAR
    return mask


class ColourRuntime(Runtime):
    """A 'model' that de-normalises its input and applies `colour_rule`. Options (or a JSON model file):
    fixed=[H, W] (fixed input shape -> letterbox), interrupt_after=k (KeyboardInterrupt on call k+1),
    fail_after=k (ValueError), channels=C (wrong logits channel count)."""

    name = "colour"
    suffixes = (".colour",)

    def load(self) -> None:
        opts = dict(self.options)
        if self.model_path.suffix == ".colour" and self.model_path.is_file():
            opts.update(json.loads(self.model_path.read_text() or "{}"))
        self.opts = opts
        self.meta = ModelMeta(arch="colour_rule", imgsz=64)
        fixed = opts.get("fixed")
        self.input_shape = (1, 3, fixed[0], fixed[1]) if fixed else (None, 3, None, None)
        self.calls = 0

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.opts.get("interrupt_after") is not None and self.calls > self.opts["interrupt_after"]:
            raise KeyboardInterrupt
        if self.opts.get("fail_after") is not None and self.calls > self.opts["fail_after"]:
            raise ValueError("stand-in failure\nsecond line")
        mean, std = np.asarray(self.meta.mean)[:, None, None], np.asarray(self.meta.std)[:, None, None]
        rgb = np.clip((batch[0] * std + mean) * 255.0, 0, 255).round().astype(np.uint8).transpose(1, 2, 0)
        mask = colour_rule(rgb)
        logits = np.full((self.opts.get("channels", self.meta.num_classes), *mask.shape), -5.0, np.float32)
        for c in (0, PERSON, CAR):
            if c < logits.shape[0]:
                logits[c][mask == c] = 5.0
        return logits[None]


def scene(h: int = 48, w: int = 64, shift: int = 0) -> np.ndarray:
    """Grey frame with a red block (person) and a blue ring with a grey hole (car)."""
    img = np.full((h, w, 3), 128, np.uint8)
    img[6:30, 4 + shift:24 + shift] = (220, 30, 30)
    cv2.circle(img, (46, 28), 14, (30, 30, 220), -1)
    cv2.circle(img, (46, 28), 5, (128, 128, 128), -1)
    return img


def write_video(path: Path, n: int = 10, h: int = 48, w: int = 64, fps: float = 10.0) -> list[np.ndarray]:
    """An mp4v test video of `n` scene frames (the red block moves); returns the frames as written (RGB)."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    frames = [scene(h, w, shift=i) for i in range(n)]
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    return frames


def write_png(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def test_image_native_size_mask_is_exact(tmp_path: Path) -> None:
    img = scene()
    results = list(predict(write_png(tmp_path / "a.png", img), ColourRuntime("x")))
    assert len(results) == 1
    r = results[0]
    assert r.source == "a" and r.kind == "image" and r.frame_index == 0
    assert r.mask.shape == img.shape[:2] and r.overlay.shape == img.shape
    np.testing.assert_array_equal(r.mask, colour_rule(img))
    assert {g.class_name for g in r.regions} == {"person", "car"}
    car = next(g for g in r.regions if g.class_id == CAR)
    assert len(car.holes) == 1 and car.area == int((r.mask == CAR).sum())
    assert car.confidence == pytest.approx(float(r.confidence[r.mask == CAR].mean()), rel=1e-5)
    assert car.confidence == pytest.approx(1 / (1 + 20 * np.exp(-10.0)), rel=1e-4)  # +5 vs twenty -5 logits


def test_fixed_shape_model_letterboxes_and_maps_back(tmp_path: Path) -> None:
    img = scene(96, 128)
    (r,) = predict(write_png(tmp_path / "b.png", img), ColourRuntime("x", fixed=[64, 64]))
    assert r.mask.shape == (96, 128)
    truth = colour_rule(img)
    assert (r.mask == truth).mean() > 0.97  # half resolution and back: only edge pixels may move
    for c in (PERSON, CAR):
        ys, xs = np.nonzero(r.mask == c)
        ty, tx = np.nonzero(truth == c)
        assert abs(ys.mean() - ty.mean()) < 1.0 and abs(xs.mean() - tx.mean()) < 1.0  # no letterbox offset left


def test_video_yields_every_frame_in_order(tmp_path: Path) -> None:
    write_video(tmp_path / "v.mp4", n=10)
    cap = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    decoded = []
    while (got := cap.read())[0]:
        decoded.append(cv2.cvtColor(got[1], cv2.COLOR_BGR2RGB))
    with predict(tmp_path / "v.mp4", ColourRuntime("x")) as run:
        assert run.total == 10
        results = list(run)
    assert [r.frame_index for r in results] == list(range(10))
    assert all(r.kind == "video" and r.fps == pytest.approx(10.0) for r in results)
    for r, frame in zip(results, decoded):
        np.testing.assert_array_equal(r.mask, colour_rule(frame))


def test_max_frames_and_early_close_stop_the_threads(tmp_path: Path) -> None:
    write_video(tmp_path / "v.mp4", n=10)
    before = threading.active_count()
    assert len(list(predict(tmp_path / "v.mp4", ColourRuntime("x"), max_frames=3))) == 3
    run = predict(tmp_path / "v.mp4", ColourRuntime("x"))
    next(run)
    run.close()
    assert threading.active_count() == before


def test_runtime_error_becomes_one_line_segx_error(tmp_path: Path) -> None:
    write_video(tmp_path / "v.mp4", n=6)
    with pytest.raises(SegxError, match=r"^predict inference failed: ValueError: stand-in failure$"):
        list(predict(tmp_path / "v.mp4", ColourRuntime("x", fail_after=2)))


def test_logits_channels_must_match_metadata(tmp_path: Path) -> None:
    with pytest.raises(SegxError, match="expected .*21 classes"):
        list(predict(write_png(tmp_path / "a.png", scene()), ColourRuntime("x", channels=5)))


def test_model_without_rgb_input_is_refused(tmp_path: Path) -> None:
    rt = ColourRuntime("x")
    rt.input_shape = (1, 1, 64, 64)
    with pytest.raises(SegxError, match="needs N×3×H×W RGB input"):
        predict(write_png(tmp_path / "a.png", scene()), rt)


def test_unknown_option_is_named(tmp_path: Path) -> None:
    with pytest.raises(SegxError, match="unknown predict option 'max_frame'.*did you mean 'max_frames'"):
        predict(write_png(tmp_path / "a.png", scene()), ColourRuntime("x"), max_frame=3)


def test_probabilities_are_a_softmax_at_frame_size(tmp_path: Path) -> None:
    (r,) = predict(write_png(tmp_path / "a.png", scene()), ColourRuntime("x", fixed=[64, 64]),
                        probabilities=True)
    assert r.probabilities.shape == (21, 48, 64)
    np.testing.assert_allclose(r.probabilities.sum(0), 1.0, atol=1e-5)
    np.testing.assert_allclose(r.probabilities.max(0), r.confidence, atol=1e-6)
    assert (r.probabilities.argmax(0) == r.mask).mean() > 0.999


def test_close_before_iterating_releases_the_model(tmp_path: Path) -> None:
    rt = ColourRuntime("x")
    closed = []
    rt.close = lambda: closed.append(True)  # type: ignore[method-assign]
    from segx.predict import PredictOptions, PredictRun, open_source

    run = PredictRun(open_source(write_png(tmp_path / "a.png", scene())), rt, PredictOptions(), own_runtime=True)
    run.close()
    run.close()
    assert closed == [True]


def test_import_segx_stays_light_and_predict_is_a_plain_function() -> None:
    import subprocess
    import sys

    code = ("import sys, types, segx; assert 'torch' not in sys.modules and 'cv2' not in sys.modules; "
            "import segx.predict, segx.api; assert type(segx.predict) is types.ModuleType; "
            "assert segx.api.predict is segx.predict.predict and isinstance(segx.predict.predict, types.FunctionType)")
    subprocess.run([sys.executable, "-c", code], check=True)
