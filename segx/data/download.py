"""`segx data download`: VOC2012 trainval (+ SBD) from torchvision's sources, resumable (HTTP Range) into FILE.part,
MD5-verified before an atomic rename, then extracted with tarfile's "data" filter through a staging folder."""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from segx.data.layout import resolve_voc_root
from segx.errors import SegxError

log = logging.getLogger(__name__)
CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    url: str
    filename: str
    md5: str


def voc_archive() -> Archive:
    """VOC2012 trainval: the URL and MD5 torchvision.datasets.VOCSegmentation uses."""
    from torchvision.datasets.voc import DATASET_YEAR_DICT

    d = DATASET_YEAR_DICT["2012"]
    return Archive(d["url"], d["filename"], d["md5"])


def sbd_archive() -> Archive:
    """SBD (benchmark.tgz): the URL and MD5 torchvision.datasets.SBDataset uses."""
    from torchvision.datasets.sbd import SBDataset

    return Archive(SBDataset.url, SBDataset.filename, SBDataset.md5)


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _open_url(url: str, offset: int) -> urllib.response.addinfourl | None:
    """Open `url` from byte `offset`; None when the server says the range is already complete (416)."""
    headers = {"User-Agent": "segx", **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            return None
        raise SegxError(f"{url}: HTTP {e.code} {e.reason}; check the URL or pass --url for a mirror") from e
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise SegxError(f"{url}: cannot download ({reason}); check the connection or pass --url for a mirror") from e


def _stream(url: str, part: Path) -> None:
    """Append the rest of `url` to `part` (resuming with HTTP Range when `part` already holds bytes)."""
    from segx.log import progress

    offset = part.stat().st_size if part.is_file() else 0
    resp = _open_url(url, offset)
    if resp is None:
        return
    with resp:
        if offset and resp.status != 206:
            log.info("%s: the server ignored the Range request; downloading from the start", url)
            offset = 0
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        done = offset
        with open(part, "ab" if offset else "wb") as f, progress() as bar:
            task = bar.add_task(f"downloading {part.name[:-5]}", total=total, completed=offset)
            try:
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
                    done += len(chunk)
                    bar.update(task, completed=done)
            except (OSError, ValueError, http.client.HTTPException) as e:
                log.debug("download stopped: %s", e)
            f.flush()
            os.fsync(f.fileno())
    if total is not None and done < total:
        raise SegxError(f"{url}: download stopped at {done:,} of {total:,} bytes; run the command again to resume")


def fetch(url: str, dest: Path, md5: str) -> Path:
    """Download `url` to `dest` via `dest.part`, verify MD5, then rename. A verified `dest` is not fetched again."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        if md5sum(dest) == md5:
            log.info("%s: already downloaded (MD5 ok)", dest)
            return dest
        log.warning("%s: MD5 does not match; downloading it again", dest)
        dest.unlink()
    part = dest.with_name(dest.name + ".part")
    _stream(url, part)
    got = md5sum(part)
    if got != md5:
        part.unlink()
        raise SegxError(f"{url}: MD5 mismatch (got {got}, expected {md5}); the download was deleted, "
                        f"run again or pass --url for another mirror")
    os.replace(part, dest)
    return dest


def extract(archive: Path, dest: Path, expect: str | None = None) -> None:
    """Extract into a staging folder with filter="data" (no ../, absolute paths or escaping links), then move each
    top-level entry into `dest`; entries already in `dest` are kept. Nothing partial is left on any error, nor when
    the archive lacks the folder `expect` (e.g. "VOCdevkit/VOC2012")."""
    from segx.log import progress

    staging = Path(tempfile.mkdtemp(prefix=".extract.", dir=dest))
    try:
        with open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r:*") as tf, progress() as bar:
            task = bar.add_task(f"extracting {archive.name}", total=archive.stat().st_size)
            for member in tf:
                if member.name.startswith(("/", "\\")) or Path(member.name).is_absolute():
                    raise tarfile.AbsolutePathError(member)  # "data" would only strip the "/": refuse it instead
                tf.extract(member, staging, filter="data")
                bar.update(task, completed=raw.tell())
        if expect is not None and not (staging / expect).is_dir():
            raise SegxError(f"{archive}: the archive holds no {expect} folder; is it the right file?")
        for top in sorted(staging.iterdir()):
            if (dest / top.name).exists():
                log.info("%s already exists; kept as is", dest / top.name)
            else:
                top.rename(dest / top.name)
    except tarfile.FilterError as e:
        raise SegxError(f"{archive}: refusing unsafe member {e.tarinfo.name!r} ({e}); nothing was extracted") from e
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise SegxError(f"{archive}: not a readable tar archive ({e}); delete it and download again") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download_voc(root: str | Path, *, sbd: bool = False, url: str | None = None, md5: str | None = None,
                 sbd_url: str | None = None, sbd_md5: str | None = None) -> Path:
    """Get VOC2012 trainval into root/VOCdevkit/VOC2012 (and with `sbd`, SBD + the train_aug split); returns VOC2012.

    `url`/`md5` (`sbd_url`/`sbd_md5`) override torchvision's source and checksum (mirrors, tests)."""
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise SegxError(f"{root}: not a folder; pass the folder to download into with --root")
    root.mkdir(parents=True, exist_ok=True)
    voc = voc_archive()
    archive = fetch(url or voc.url, root / voc.filename, md5 or voc.md5)
    if not (root / "VOCdevkit" / "VOC2012").is_dir():
        extract(archive, root, "VOCdevkit/VOC2012")
    if not (root / "VOCdevkit" / "VOC2012").is_dir():
        raise SegxError(f"{archive}: the archive holds no VOCdevkit/VOC2012 folder; is --url the VOC2012 trainval tar?")
    voc_root = resolve_voc_root(root)
    if sbd:
        from segx.data.sbd import prepare_aug

        spec = sbd_archive()
        sbd_file = fetch(sbd_url or spec.url, root / spec.filename, sbd_md5 or spec.md5)
        if not (root / "benchmark_RELEASE").is_dir():
            extract(sbd_file, root, "benchmark_RELEASE")
        prepare_aug(voc_root, root / "benchmark_RELEASE" / "dataset")
    return voc_root
