"""`segx predict` through click with the colour-rule stand-in runtime registered for `.colour` files: output video
frame count and size, masks read back, region JSON vs mask areas, corrupt inputs, Ctrl-C, bad input errors."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from test_predict_pipeline import ColourRuntime, colour_rule, scene, write_png, write_video

from segx.predict import predict
from segx.runtimes import RUNTIMES, _import_all
from segx.cli import cli
from segx.data.voc import read_mask


@pytest.fixture
def colour_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `.colour` model file that load_runtime opens with ColourRuntime (its JSON holds the stand-in's options)."""
    _import_all()
    monkeypatch.setitem(RUNTIMES, ColourRuntime.name, ColourRuntime)
    path = tmp_path / "model.colour"
    path.write_text("{}")
    return path


def run_cli(*args: object) -> tuple[int, str]:
    res = CliRunner().invoke(cli, [str(a) for a in args])
    return res.exit_code, res.output


def video_info(path: Path) -> tuple[int, int, int, float]:
    """(frames actually decodable, width, height, fps) of a video file."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} does not open"
    n = 0
    while cap.read()[0]:
        n += 1
    w, h, fps = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), cap.get(
        cv2.CAP_PROP_FPS)
    cap.release()
    return n, w, h, fps


def test_video_outputs(tmp_path: Path, colour_model: Path) -> None:
    video = tmp_path / "clip.mp4"
    write_video(video, n=10, fps=12.0)
    out = tmp_path / "out"
    code, output = run_cli("predict", video, "--model", colour_model, "--out", out, "--save-masks", "--save-json")
    assert code == 0, output
    n, w, h, fps = video_info(out / "clip.mp4")
    assert (n, w, h) == (10, 64, 48) and fps == pytest.approx(12.0)
    assert not list(out.glob(".*"))  # no temp files left
    expected = [r.mask for r in predict(video, ColourRuntime("x"))]
    masks = sorted((out / "masks").glob("clip_*.png"))
    assert [m.name for m in masks] == [f"clip_{i:06d}.png" for i in range(10)]
    for path, mask in zip(masks, expected):
        np.testing.assert_array_equal(read_mask(path), mask)
    frames = json.loads((out / "regions" / "clip.json").read_text())
    assert [f["frame"] for f in frames] == list(range(10))
    for entry, mask in zip(frames, expected):
        assert {g["class_name"] for g in entry["regions"]} == {"person", "car"}
        for c in (7, 15):  # the regions of a class cover exactly its mask pixels
            assert sum(g["area"] for g in entry["regions"] if g["class_id"] == c) == int((mask == c).sum())
        big = [g for g in entry["regions"] if g["area"] >= 300]  # the block and the ring (video noise aside)
        assert len(big) == 2
        for g in big:
            poly = cv2.contourArea(np.array(g["polygon"], np.int32)) - sum(
                cv2.contourArea(np.array(hole, np.int32)) for hole in g["holes"])
            assert abs(poly - g["area"]) / g["area"] < 0.15  # pixel-centre polygon: a little under the pixel count
            assert 0.99 < g["confidence"] <= 1.0


def test_image_folder_with_a_corrupt_image(tmp_path: Path, colour_model: Path) -> None:
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(3):
        write_png(src / f"im{i}.png", scene(shift=4 * i))
    (src / "bad.jpg").write_bytes(b"not a jpeg at all")
    out = tmp_path / "out"
    code, output = run_cli("predict", src, "--model", colour_model, "--out", out, "--save-masks", "--save-json")
    assert code == 0, output
    assert "skipped 1 unreadable input(s)" in output and "bad.jpg" in output  # the CLI's log lines (stderr)
    assert sorted(p.name for p in out.glob("*.jpg")) == ["im0.jpg", "im1.jpg", "im2.jpg"]
    assert cv2.imread(str(out / "im1.jpg")).shape == (48, 64, 3)
    np.testing.assert_array_equal(read_mask(out / "masks" / "im2.png"), colour_rule(scene(shift=8)))
    doc = json.loads((out / "regions" / "im0.json").read_text())
    assert (doc["width"], doc["height"]) == (64, 48) and len(doc["regions"]) == 2


def test_nothing_readable_exits_1(tmp_path: Path, colour_model: Path) -> None:
    src = tmp_path / "imgs"
    src.mkdir()
    (src / "a.png").write_bytes(b"")
    (src / "b.jpg").write_bytes(b"garbage")
    code, output = run_cli("predict", src, "--model", colour_model, "--out", tmp_path / "out")
    assert code == 1
    assert output.strip().splitlines()[-1].startswith("segx: error:") and "nothing could be read" in output


def test_ctrl_c_leaves_a_playable_video(tmp_path: Path, colour_model: Path) -> None:
    colour_model.write_text(json.dumps({"interrupt_after": 4}))
    video = tmp_path / "clip.mp4"
    write_video(video, n=10)
    code, output = run_cli("predict", video, "--model", colour_model, "--out", tmp_path / "out", "--save-json")
    assert code == 130, output
    assert "interrupted after 4 frame(s)" in output
    n, w, h, _ = video_info(tmp_path / "out" / "clip.mp4")
    assert n == 4 and (w, h) == (64, 48)
    assert len(json.loads((tmp_path / "out" / "regions" / "clip.json").read_text())) == 4


def test_default_out_is_a_new_numbered_run(tmp_path: Path, colour_model: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "a.png", scene())
    for n in (1, 2):
        code, output = run_cli("predict", "a.png", "--model", colour_model)
        assert code == 0, output
        assert (tmp_path / "runs" / "predict" / str(n) / "a.jpg").is_file()
        assert f"results in runs/predict/{n}" in output


@pytest.mark.parametrize("content, args, message", [
    (None, [], "clip.mp4: no such file or directory"),
    (b"", [], "clip.mp4: empty video file (0 bytes)"),
    (b"\x00" * 4096, [], "clip.mp4: cannot open video"),
    ("video", ["--runtime", "colours"], "unknown runtime 'colours' (did you mean 'colour'?)"),
    ("video", ["--precision", "int4"], "runtime 'colour' has no precision 'int4'"),
])
def test_bad_inputs_are_one_line_errors(tmp_path: Path, colour_model: Path, content: bytes | str | None,
                                        args: list[str], message: str) -> None:
    src = tmp_path / "clip.mp4"
    if content == "video":
        write_video(src, n=2)
    elif content is not None:
        src.write_bytes(content)
    code, output = run_cli("predict", src, "--model", colour_model, "--out", tmp_path / "o", *args)
    assert code == 1
    assert output.count("segx: error:") == 1 and message in output and "Traceback" not in output
    assert not (tmp_path / "o").exists()


def test_unknown_model_suffix(tmp_path: Path) -> None:
    (tmp_path / "m.h5").write_bytes(b"x")
    code, output = run_cli("predict", write_png(tmp_path / "a.png", scene()), "--model", tmp_path / "m.h5")
    assert code == 1 and "unknown model file type '.h5'" in output


def test_show_without_gui_says_how_to_get_it(tmp_path: Path, colour_model: Path) -> None:
    try:
        cv2.namedWindow("probe")
        cv2.destroyWindow("probe")
        pytest.skip("this OpenCV has GUI support")
    except cv2.error:
        pass
    code, output = run_cli("predict", write_png(tmp_path / "a.png", scene()), "--model", colour_model, "--show")
    assert code == 1
    assert "segx: error: --show needs OpenCV with GUI support: pip install opencv-python" in output


def test_writer_failure_is_one_line_error(tmp_path: Path, colour_model: Path) -> None:
    (tmp_path / "taken").write_text("a file where the output folder should go")
    code, output = run_cli("predict", write_png(tmp_path / "a.png", scene()), "--model", colour_model, "--out",
                           tmp_path / "taken")
    assert code == 1
    assert output.count("segx: error:") == 1 and "writing results to" in output and "Traceback" not in output
