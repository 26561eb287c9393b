"""Downloading published weights: torch.hub's checkpoint cache with the sha256 prefix carried in the file name
(torchvision's convention, checked on download and on every use), and smp's encoder weights from the Hugging Face hub
at a pinned revision. Every failure is one SegxError line; offline, it names the exact path to put the file at."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

import torch

from segx.errors import SegxError
from segx.io import load_failure

WEIGHTS_URL_ENV = "SEGX_WEIGHTS_URL"  # base URL that replaces the folder of every weights URL (a mirror; tests)
_HASH = re.compile(r"-([a-f0-9]{6,})\.")  # torch.hub.HASH_REGEX, at least 6 hex digits


def mirrored(url: str) -> str:
    """`url`, or the same file name under $SEGX_WEIGHTS_URL when that is set."""
    base = os.environ.get(WEIGHTS_URL_ENV, "").strip()
    return f"{base.rstrip('/')}/{file_name(url)}" if base else url


def file_name(url: str) -> str:
    name = Path(urlparse(url).path).name
    if not name:
        raise SegxError(f"{url}: the URL names no file (expected .../NAME.pth)")
    return name


def cache_path(url: str) -> Path:
    """Where torch.hub keeps the file of `url`: $TORCH_HOME/hub/checkpoints/<file name>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name(url)


def hash_prefix(name: str) -> str | None:
    """The sha256 prefix in a file name such as lraspp_mobilenet_v3_large-d234d4ea.pth, or None."""
    match = _HASH.search(name)
    return match.group(1) if match else None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, *, progress: bool = True) -> Path:
    """The cached file of `url` (downloaded first when absent), checked against the sha256 prefix in its name."""
    url = mirrored(url)
    dest, prefix = cache_path(url), hash_prefix(file_name(url))
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(dest), hash_prefix=prefix, progress=progress)
        except RuntimeError as e:
            if "invalid hash value" not in str(e):
                raise
            raise SegxError(f"{url}: checksum mismatch ({e}); the download is corrupt or not the published file, "
                            f"nothing was saved") from e
        except (URLError, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise SegxError(f"could not download {url} ({reason}); offline? fetch that file elsewhere and put it "
                            f"at {dest}") from e
    elif prefix and not sha256(dest).startswith(prefix):
        raise SegxError(f"{dest}: checksum mismatch (sha256 does not start with {prefix}, the prefix in its name); "
                        f"delete it so segx downloads it again, or replace it with {url}")
    return dest


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict file (torch.load with weights_only=True, or safetensors)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch/safetensors raise many types for bad files
        raise SegxError(f"{path}: not a loadable weights file ({load_failure(e)}); delete it to download it "
                        f"again") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SegxError(f"{path}: not a state_dict of tensors")
    return state


def fetch_hf(repo_id: str, revision: str, filename: str = "model.safetensors") -> Path:
    """A file of a Hugging Face hub repo at a pinned commit, through the hub's own cache."""
    from huggingface_hub import constants, hf_hub_download

    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision))
    except Exception as e:  # noqa: BLE001 - network, offline mode and missing-entry errors of huggingface_hub
        folder = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}" / "snapshots" / revision
        raise SegxError(f"could not download {filename} of {repo_id}@{revision[:8]} from the Hugging Face hub "
                        f"({type(e).__name__}); offline? fetch https://huggingface.co/{repo_id}/"
                        f"resolve/{revision}/{filename} elsewhere and put it at {folder / filename}") from e
