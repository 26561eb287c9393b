"""What the bundled Triton needs before it starts: the Python backend's stub must load this interpreter's own libpython
(a pyenv or other non-system Python is not on the loader path), and, with NumPy 2, pytriton 0.7's proxy model must
move tensors in and out of the stub through DLPack: the stub is built against the NumPy-1 ABI, reads a NumPy-2
dtype's item size as 0, and so hands the model one repeated pixel and sends empty outputs."""
from __future__ import annotations

import os
import sysconfig

import numpy as np

from segx.runtimes import RuntimeUnavailable

INSTALL = "pip install 'segx[serve]' (nvidia-pytriton with tritonclient[grpc,http]; see docs/serve.md)"
# (text in pytriton/proxy/model.py, its replacement). The stub renames a consumed capsule "used_dlpack", not the
# DLPack standard's "used_dltensor" that NumPy's capsule destructor looks for: _segx_tensor renames it properly.
_NUMPY2_FIXES = (
    ("request[input_name] = input_tensor.as_numpy()",
     "request[input_name] = __import__('numpy').from_dlpack(input_tensor).copy()"),
    ("pb_utils.Tensor(name, value)", "_segx_tensor(name, value)"),
    ("def _wrap_response(", """import ctypes
_SEGX_USED = b"used_dltensor"
_segx_set_name = ctypes.pythonapi.PyCapsule_SetName
_segx_set_name.argtypes = (ctypes.py_object, ctypes.c_char_p)


def _segx_tensor(name, value):
    capsule = value.__dlpack__()
    tensor = pb_utils.Tensor.from_dlpack(name, capsule)
    _segx_set_name(capsule, _SEGX_USED)
    return tensor


def _wrap_response("""),
)


def require_pytriton() -> None:
    try:
        import pytriton.triton  # noqa: F401
        import tritonclient.http  # noqa: F401
    except ImportError as e:
        raise RuntimeUnavailable(f"segx serve needs nvidia-pytriton and tritonclient: {INSTALL}") from e


def libpython_dir() -> str | None:
    """The folder of this interpreter's shared libpython (None for a static build)."""
    libdir, name = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    if libdir and name and name.endswith(".so") and os.path.exists(os.path.join(libdir, name)):
        return libdir
    return None


def put_libpython_first() -> None:
    """Prepend this Python's lib folder to LD_LIBRARY_PATH; pytriton copies os.environ into tritonserver's."""
    libdir = libpython_dir()
    paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    if libdir and (not paths or paths[0] != libdir):
        os.environ["LD_LIBRARY_PATH"] = ":".join([libdir, *(p for p in paths if p != libdir)])


def patch_outputs_for_numpy2() -> None:
    """Rewrite the proxy model file pytriton ships to the server so tensors go through DLPack (idempotent)."""
    if int(np.__version__.split(".")[0]) < 2:
        return
    from pytriton.models import model as pt_model

    original = pt_model.Model.get_proxy_model_files
    if getattr(original, "_segx_patched", False):
        return

    def get_proxy_model_files(self: pt_model.Model) -> dict[str, bytes]:
        files = original(self)
        key = f"file:{self.model_version}/model.py"
        text = files[key].decode()
        for old, new in _NUMPY2_FIXES:
            if old not in text:
                raise RuntimeUnavailable(f"segx serve: this nvidia-pytriton's proxy model is not the one segx "
                                         f"patches for NumPy 2 (no '{old}'); install nvidia-pytriton==0.7.0")
            text = text.replace(old, new, 1)
        files[key] = text.encode()
        return files

    get_proxy_model_files._segx_patched = True  # type: ignore[attr-defined]
    pt_model.Model.get_proxy_model_files = get_proxy_model_files  # type: ignore[method-assign]


def prepare() -> None:
    require_pytriton()
    put_libpython_first()
    patch_outputs_for_numpy2()
