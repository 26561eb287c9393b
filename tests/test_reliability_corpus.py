"""The bad-input corpus, part 1 (data): broken, bomb and non-image files with image suffixes; masks of the wrong mode,
values or size; VOC trees missing folders, lists or files; corrupt and zero-frame videos — each fed to every command
that reads it (predict, data check, eval, train, export --data). Each must exit 1 with one `segx: error:` line naming
the file and the problem, and leave no file behind (tests/refusal.py). Healthy twins of each input pass."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from badinputs import BAD_IMAGES, jpeg_bytes, mask_cases, video_cases, write_video
from badmodels import save_onnx, tiny_onnx_model
from refusal import Sandbox, make_sandbox, wide_console  # noqa: F401 - wide_console is an autouse fixture

from segx.data.synth import make_synthetic_voc
from segx.data.voc import VOCSegmentation, read_image

LRASPP = "lraspp_mobilenet_v3_large"
SIZE = 32


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Read-only inputs shared by the cases: a 4-image VOC tree, a tiny ONNX model, a healthy image and video."""
    root = tmp_path_factory.mktemp("shared")
    voc = make_synthetic_voc(root / "synth", n=4, size=SIZE, seed=0)
    onnx_file = root / "tiny.onnx"
    save_onnx(tiny_onnx_model())(onnx_file)
    image = root / "good.jpg"
    image.write_bytes(jpeg_bytes())
    return {"voc": voc, "onnx": onnx_file, "image": image, "video": write_video(root / "good.mp4", n=5),
            "root": root}


@pytest.fixture
def box(tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        shared: dict[str, Path]) -> Sandbox:
    return make_sandbox(tmp_path, capfd, monkeypatch, watch=[shared["root"]])


def val_id(voc: Path) -> str:
    return (voc / "ImageSets/Segmentation/val.txt").read_text().split()[0]


def predict_args(source: Path, model: Path, box: Sandbox) -> list[object]:
    return ["predict", source, "--model", model, "--out", box.out, "--save-masks", "--save-json"]


def eval_args(voc: Path, model: Path, box: Sandbox) -> list[object]:
    return ["eval", "--data", voc, "--model", model, "--json", box.out / "eval.json", "--device", "cpu"]


def train_args(voc: Path, box: Sandbox, *extra: object) -> list[object]:
    return ["train", "--data", voc, "--arch", LRASPP, "--epochs", "1", "--batch", "1", "--crop", SIZE, "--workers",
            "0", "--device", "cpu", "--out", box.out / "run", *extra]


# -- controls: the same commands on healthy input pass --------------------------------------------------------------
def test_controls_pass(box: Sandbox, shared: dict[str, Path]) -> None:
    box.succeeds(predict_args(shared["image"], shared["onnx"], box))
    box.succeeds(predict_args(shared["video"], shared["onnx"], box))
    box.succeeds(["data", "check", "--root", shared["voc"]])
    box.succeeds(eval_args(shared["voc"], shared["onnx"], box))
    assert (box.out / "eval.json").is_file() and (box.out / "good.mp4").is_file()


# -- images ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("consumer", ["predict", "check", "eval"])
@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image(case: str, consumer: str, box: Sandbox, shared: dict[str, Path]) -> None:
    suffix, write, pattern = BAD_IMAGES[case]
    if consumer == "predict":
        bad = box.inp / f"{case}{suffix}"
        write(bad)
        box.refused(predict_args(bad, shared["onnx"], box), names=[bad.name], pattern=pattern)
        return
    voc = box.copy_tree(shared["voc"])
    bad = voc / "JPEGImages" / f"{val_id(voc)}.jpg"
    write(bad)
    if consumer == "check":
        box.refused(["data", "check", "--root", voc], names=[f"JPEGImages/{bad.name}"], pattern=pattern,
                    in_table=True)
    else:
        box.refused(eval_args(voc, shared["onnx"], box), names=[bad.name], pattern=pattern)


def test_pixel_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    """The guard reads the header only: a 110 MP JPEG whose data is 1 KB is refused without decoding a pixel,
    and a lower limit applies to a small picture too (predict's --max-pixels path)."""
    from badinputs import jpeg_claiming

    from segx.errors import SegxError

    (tmp_path / "bomb.jpg").write_bytes(jpeg_claiming(11_000, 10_000))
    with pytest.raises(SegxError, match=r"11000×10000 = 110 MP is above the 100 MP limit"):
        read_image(tmp_path / "bomb.jpg")
    (tmp_path / "small.jpg").write_bytes(jpeg_bytes(32, 24))
    assert read_image(tmp_path / "small.jpg").shape == (24, 32, 3)
    with pytest.raises(SegxError, match="above the 0 MP limit"):
        read_image(tmp_path / "small.jpg", max_pixels=32 * 24 - 1)


# -- masks -----------------------------------------------------------------------------------------------------------
MASKS = sorted(mask_cases(SIZE, SIZE))


@pytest.mark.parametrize("consumer", ["check", "eval"])
@pytest.mark.parametrize("case", MASKS)
def test_bad_mask(case: str, consumer: str, box: Sandbox, shared: dict[str, Path]) -> None:
    voc = box.copy_tree(shared["voc"])
    bad = voc / "SegmentationClass" / f"{val_id(voc)}.png"
    write, pattern = mask_cases(SIZE, SIZE)[case]
    write(bad)
    if consumer == "check":
        box.refused(["data", "check", "--root", voc], names=[f"SegmentationClass/{bad.name}"], pattern=pattern,
                    in_table=True)
    else:
        box.refused(eval_args(voc, shared["onnx"], box), names=[bad.name], pattern=pattern)


@pytest.mark.parametrize("case", ["rgb", "value_50", "size_mismatch"])
def test_bad_mask_stops_training(case: str, box: Sandbox, shared: dict[str, Path]) -> None:
    """A bad mask of a training image: one error naming it, no run folder left behind."""
    voc = box.copy_tree(shared["voc"])
    train_id = (voc / "ImageSets/Segmentation/train.txt").read_text().split()[0]
    bad = voc / "SegmentationClass" / f"{train_id}.png"
    write, pattern = mask_cases(SIZE, SIZE)[case]
    write(bad)
    box.refused(train_args(voc, box), names=[bad.name], pattern=pattern)


def test_dataset_refuses_labels_outside_the_classes(shared: dict[str, Path], tmp_path: Path) -> None:
    from segx.data.voc import write_mask
    from segx.errors import SegxError

    voc = Path(shutil.copytree(shared["voc"], tmp_path / "v"))
    ds = VOCSegmentation(voc, "val")
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[0, :3] = (255, 20, 0)  # void and the last class are fine
    write_mask(ds.mask_path(0), mask)
    assert ds[0][1].max() == 255
    mask[5, 5] = 21
    write_mask(ds.mask_path(0), mask)
    with pytest.raises(SegxError, match=r"mask values \[21\] are outside 0-20 and 255"):
        ds[0]


# -- VOC trees -------------------------------------------------------------------------------------------------------
def _rm(rel: str) -> object:
    def edit(voc: Path, vid: str) -> Path:
        target = voc / rel.format(id=vid)
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        return target
    return edit


def _write_list(name: str, data: bytes) -> object:
    def edit(voc: Path, vid: str) -> Path:
        target = voc / "ImageSets/Segmentation" / name
        target.write_bytes(data)
        return target
    return edit


def _list_dir(voc: Path, vid: str) -> Path:
    target = voc / "ImageSets/Segmentation/val.txt"
    target.unlink()
    target.mkdir()
    return target


# name -> (edit(voc, val id) -> the path to name, pattern, consumers that must refuse it)
ALL = ("check", "eval", "train", "export")
TREES = {
    "no_JPEGImages": (_rm("JPEGImages"), "missing|do not exist", ALL),
    "no_SegmentationClass": (_rm("SegmentationClass"), "missing|do not exist", ALL),
    "no_ImageSets": (_rm("ImageSets"), "missing|no file", ALL),
    "no_val_list": (_rm("ImageSets/Segmentation/val.txt"), r"unknown split list 'val' .*\(no file \S*/val\.txt\)",
                    ("eval", "train", "export")),
    "no_train_list": (_rm("ImageSets/Segmentation/train.txt"), r"unknown split list 'train' .*\(no file \S*/train\.txt\)",
                      ("train",)),
    "missing_image": (_rm("JPEGImages/{id}.jpg"), "missing|do not exist", ALL),
    "missing_mask": (_rm("SegmentationClass/{id}.png"), "missing|do not exist", ALL),
    "empty_val_list": (_write_list("val.txt", b""), "empty|no IDs|no images", ALL),
    "blank_val_list": (_write_list("val.txt", b"\n  \n\n"), "empty|no IDs|no images", ALL),
    "binary_val_list": (_write_list("val.txt", b"\xff\xfe\x00\x81garbage"), "unreadable split list", ALL),
    "dotdot_id": (_write_list("val.txt", b"../../../victim/keep\n"), "bad ID", ALL),
    "val_list_is_a_folder": (_list_dir, "unreadable split list", ALL),
}
TREE_PARAMS = [(case, consumer) for case, (_, _, consumers) in sorted(TREES.items()) for consumer in consumers]


@pytest.mark.parametrize(("case", "consumer"), TREE_PARAMS)
def test_broken_voc_tree(case: str, consumer: str, box: Sandbox, shared: dict[str, Path]) -> None:
    voc = box.copy_tree(shared["voc"])
    edit, pattern, _ = TREES[case]
    named = edit(voc, val_id(shared["voc"]))
    if consumer == "check":
        shown = str(named.relative_to(voc)) if case != "dotdot_id" else "val.txt"
        box.refused(["data", "check", "--root", voc], names=[shown], pattern=pattern, in_table=True)
        return
    args = {"eval": lambda: eval_args(voc, shared["onnx"], box), "train": lambda: train_args(voc, box),
            "export": lambda: ["export", "--model", shared["onnx"], "--fmt", "onnx", "--data", voc, "--out", box.out]}
    box.refused(args[consumer](), names=[named.name], pattern=pattern)


@pytest.mark.parametrize(("case", "pattern"), [("nowhere", "no such folder"), ("a_file", "not a folder"),
                                               ("empty_folder", "no VOC2012 tree")])
@pytest.mark.parametrize("consumer", ["check", "eval", "train", "split"])
def test_not_a_voc_tree(case: str, pattern: str, consumer: str, box: Sandbox, shared: dict[str, Path]) -> None:
    path = box.inp / case
    if case == "a_file":
        path.write_text("x")
    elif case == "empty_folder":
        path.mkdir()
    args = {"check": ["data", "check", "--root", path], "split": ["data", "split", "--root", path],
            "eval": eval_args(path, shared["onnx"], box), "train": train_args(path, box)}[consumer]
    box.refused(args, names=[case], pattern=pattern)


# -- videos ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(video_cases(Path("unused"))))
def test_bad_video(case: str, box: Sandbox, shared: dict[str, Path]) -> None:
    suffix, write, pattern = video_cases(shared["video"])[case]
    bad = box.inp / f"{case}{suffix}"
    write(bad)
    box.refused(predict_args(bad, shared["onnx"], box), names=[bad.name], pattern=pattern)


def test_video_frames_above_the_pixel_limit_are_refused(shared: dict[str, Path]) -> None:
    """Videos get the still images' decompression-bomb guard, from the container's frame size."""
    from segx.errors import SegxError
    from segx.predict.sources import open_source

    with pytest.raises(SegxError, match=r"good\.mp4: frames of 64×48 = 0 MP are above the 0 MP limit"):
        open_source(shared["video"], max_pixels=64 * 48 - 1)
    assert len(list(open_source(shared["video"], max_pixels=64 * 48))) == 5
