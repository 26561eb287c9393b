"""Download against a local HTTP server: right/wrong MD5, truncated transfer resumed with Range, unsafe tar members."""
from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner
from PIL import Image

from segx.cli import cli
from segx.data.download import download_voc, fetch, voc_archive
from segx.data.synth import make_synthetic_voc
from segx.errors import SegxError


class Server:
    """Serves `files` (path -> bytes) with HTTP Range support; `drop_once[path] = n` cuts the first reply at n bytes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drop_once: dict[str, int] = {}
        self.ranges = True
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng and server.ranges else 0
                if start >= len(data) and start:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                cut = server.drop_once.pop(self.path, None)
                self.wfile.write(body if cut is None else body[:cut])
                self.wfile.flush()
                if cut is not None:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _tar(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buf.getvalue()


@pytest.fixture(scope="module")
def voc_tar(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small tar in the VOC layout (VOCdevkit/VOC2012/...)."""
    root = make_synthetic_voc(tmp_path_factory.mktemp("src"), n=4, size=32)
    files = sorted(p for p in root.parent.rglob("*") if p.is_file())
    return _tar({str(p.relative_to(root.parent.parent)): p.read_bytes() for p in files})


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".") or p.suffix == ".part")


def test_download_verifies_extracts_and_does_not_refetch(server: Server, voc_tar: bytes, tmp_path: Path) -> None:
    server.files["/voc.tar"] = voc_tar
    voc = download_voc(tmp_path, url=f"{server.url}/voc.tar", md5=_md5(voc_tar))
    assert voc == tmp_path / "VOCdevkit" / "VOC2012"
    assert len((voc / "ImageSets/Segmentation/trainval.txt").read_text().split()) == 4
    assert len(list((voc / "SegmentationClass").glob("*.png"))) == 4
    assert (tmp_path / voc_archive().filename).read_bytes() == voc_tar and _leftovers(tmp_path) == []
    assert download_voc(tmp_path, url=f"{server.url}/voc.tar", md5=_md5(voc_tar)) == voc
    assert len(server.requests) == 1  # verified archive: not fetched again


def test_wrong_md5_deletes_and_fails_in_one_line(server: Server, voc_tar: bytes, tmp_path: Path) -> None:
    server.files["/voc.tar"] = voc_tar  # not the real VOC tar: torchvision's MD5 cannot match
    res = CliRunner().invoke(cli, ["data", "download", "--root", str(tmp_path), "--url", f"{server.url}/voc.tar"])
    assert res.exit_code == 1
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("segx: error: ") and "MD5 mismatch" in line and voc_archive().md5 in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # neither .part nor archive nor a half tree


def test_truncated_download_resumes_with_range(server: Server, voc_tar: bytes, tmp_path: Path) -> None:
    server.files["/voc.tar"] = voc_tar
    server.drop_once["/voc.tar"] = len(voc_tar) // 3
    with pytest.raises(SegxError, match="download stopped at .* run the command again to resume"):
        fetch(f"{server.url}/voc.tar", tmp_path / "voc.tar", _md5(voc_tar))
    part = tmp_path / "voc.tar.part"
    assert part.stat().st_size == len(voc_tar) // 3 and not (tmp_path / "voc.tar").exists()
    fetch(f"{server.url}/voc.tar", tmp_path / "voc.tar", _md5(voc_tar))
    assert server.requests[-1] == ("/voc.tar", f"bytes={len(voc_tar) // 3}-")
    assert (tmp_path / "voc.tar").read_bytes() == voc_tar and not part.exists()


def test_complete_part_and_server_without_range(server: Server, voc_tar: bytes, tmp_path: Path) -> None:
    server.files["/voc.tar"] = voc_tar
    (tmp_path / "a.tar.part").write_bytes(voc_tar)  # complete already: the server answers 416
    fetch(f"{server.url}/voc.tar", tmp_path / "a.tar", _md5(voc_tar))
    assert (tmp_path / "a.tar").read_bytes() == voc_tar
    server.ranges = False  # a server that ignores Range: start over instead of appending a second copy
    (tmp_path / "b.tar.part").write_bytes(voc_tar[:100])
    fetch(f"{server.url}/voc.tar", tmp_path / "b.tar", _md5(voc_tar))
    assert (tmp_path / "b.tar").read_bytes() == voc_tar


@pytest.mark.parametrize("unsafe", [{"members": {"../evil.txt": b"x"}}, {"links": {"VOCdevkit/link": "/etc/passwd"}},
                                    {"links": {"VOCdevkit/up": "../../outside"}}])
def test_unsafe_members_are_refused(server: Server, tmp_path: Path, unsafe: dict) -> None:
    data = _tar({"VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt": b"a\n", **unsafe.get("members", {})},
                unsafe.get("links"))
    server.files["/bad.tar"] = data
    root = tmp_path / "root"
    with pytest.raises(SegxError, match="refusing unsafe member .* nothing was extracted"):
        download_voc(root, url=f"{server.url}/bad.tar", md5=_md5(data))
    assert not (tmp_path / "evil.txt").exists()
    assert sorted(p.name for p in root.iterdir()) == [voc_archive().filename]  # no tree, no staging folder


def test_absolute_member_is_refused(server: Server, tmp_path: Path) -> None:
    data = _tar({"VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt": b"a\n", "/tmp/segx_abs_test.txt": b"x"})
    server.files["/abs.tar"] = data
    with pytest.raises(SegxError, match="refusing unsafe member '/tmp/segx_abs_test.txt'.* nothing was extracted"):
        download_voc(tmp_path, url=f"{server.url}/abs.tar", md5=_md5(data))
    assert not (tmp_path / "tmp").exists() and not (tmp_path / "VOCdevkit").exists()
    assert not Path("/tmp/segx_abs_test.txt").exists()


def test_http_errors_are_one_line(server: Server, tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["data", "download", "--root", str(tmp_path), "--url", f"{server.url}/missing"])
    assert res.exit_code == 1 and res.stderr.strip().splitlines() == [
        f"segx: error: {server.url}/missing: HTTP 404 Not Found; check the URL or pass --url for a mirror"]
    res = CliRunner().invoke(cli, ["data", "download", "--root", str(tmp_path), "--url", "http://127.0.0.1:9/x"])
    assert res.exit_code == 1 and "cannot download" in res.stderr
    (tmp_path / "file").write_text("x")
    res = CliRunner().invoke(cli, ["data", "download", "--root", str(tmp_path / "file")])
    assert res.exit_code == 1 and "not a folder" in res.stderr


def test_download_with_sbd_builds_train_aug(server: Server, voc_tar: bytes, tmp_path: Path) -> None:
    label = np.random.default_rng(0).integers(0, 21, (20, 30)).astype(np.uint8)
    mat = io.BytesIO()
    scipy.io.savemat(mat, {"GTcls": {"Segmentation": label}})
    jpg = io.BytesIO()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(jpg, format="JPEG")
    base = "benchmark_RELEASE/dataset/"
    sbd = _tar({base + "cls/sbd_000001.mat": mat.getvalue(), base + "img/sbd_000001.jpg": jpg.getvalue(),
                base + "train.txt": b"sbd_000001\n", base + "val.txt": b""})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:  # SBD ships as .tgz
        with tarfile.open(fileobj=io.BytesIO(sbd)) as src:
            for m in src:
                tf.addfile(m, src.extractfile(m))
    server.files.update({"/voc.tar": voc_tar, "/benchmark.tgz": buf.getvalue()})
    voc = download_voc(tmp_path, sbd=True, url=f"{server.url}/voc.tar", md5=_md5(voc_tar),
                       sbd_url=f"{server.url}/benchmark.tgz", sbd_md5=_md5(buf.getvalue()))
    aug = (voc / "ImageSets/Segmentation/train_aug.txt").read_text().split()
    train = (voc / "ImageSets/Segmentation/train.txt").read_text().split()
    assert aug == sorted([*train, "sbd_000001"])
    assert (voc / "JPEGImages/sbd_000001.jpg").is_file() and (voc / "SegmentationClassAug/sbd_000001.png").is_file()
    assert _leftovers(tmp_path) == []
