"""Every TensorRT name segx uses exists in the Python bindings of the oldest and newest TensorRT it supports.

No GPU needed: the `tensorrt-cu12-bindings` wheels (about 1.2 MB, from PyPI, cached under ~/.cache/segx) import over
stand-in libnvinfer / libnvonnxparser / libnvinfer_plugin built here with gcc, which export the few C entry points the
bindings link to and return null: enough to list names, not to build. The names come from segx's own source (ast):
`trt.A.B` chains and methods called on the TensorRT objects (builder, network, config, engine, context, ...), so adding
a name TensorRT removed (BuilderFlag.FP16, IInt8EntropyCalibrator2, config.int8_calibrator: gone in 11) fails here."""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the oldest 10.x, the newest 10.x (LTS line) and the newest 11.x: pyproject's gpu extra pins tensorrt>=10.0.1,<11.5
VERSIONS = ("10.0.1", "10.16.1.11", "11.4.0.106")
CACHE = Path(os.environ.get("SEGX_CACHE", Path.home() / ".cache" / "segx")) / "tensorrt-bindings"
# the TensorRT class behind each variable name segx's TensorRT code uses for a TensorRT object
ROLES = {"builder": "Builder", "network": "INetworkDefinition", "parser": "OnnxParser", "config": "IBuilderConfig",
         "profile": "IOptimizationProfile", "cache": "ITimingCache", "runtime": "Runtime", "engine": "ICudaEngine",
         "context": "IExecutionContext", "logger": "Logger"}
STUB_C = """
void *createInferBuilder_INTERNAL(void *a, int b) { return 0; }
void *createInferRefitter_INTERNAL(void *a, void *b, int c) { return 0; }
void *createInferRuntime_INTERNAL(void *a, int b) { return 0; }
void *getBuilderPluginRegistry(int a) { return 0; }
void *getPluginRegistry(void) { return 0; }
void *createNvOnnxParser_INTERNAL(void *a, void *b, int c) { return 0; }
void *createNvOnnxParserRefitter_INTERNAL(void *a, void *b, int c) { return 0; }
int getNvOnnxParserVersion(void) { return 0; }
int initLibNvInferPlugins(void *a, const char *b) { return 0; }
"""
PROBE = """
import json, sys
import tensorrt_bindings as trt
missing = []
for chain in json.loads(sys.argv[1]):
    obj = trt
    for part in chain.split("."):
        if not hasattr(obj, part):
            missing.append(chain)
            break
        obj = getattr(obj, part)
print(json.dumps({"version": trt.__version__, "missing": missing}))
"""


def _role(node: ast.expr) -> str | None:
    """`engine` or `self.engine` -> 'ICudaEngine' (ROLES), else None."""
    if isinstance(node, ast.Name):
        return ROLES.get(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return ROLES.get(node.attr)
    return None


def _trt_chain(node: ast.Attribute) -> str | None:
    """`trt.Logger.WARNING` -> 'Logger.WARNING'."""
    parts: list[str] = []
    cur: ast.expr = node
    while isinstance(cur, ast.Attribute):
        parts.append(cur.attr)
        cur = cur.value
    return ".".join(reversed(parts)) if isinstance(cur, ast.Name) and cur.id == "trt" else None


def names_in(source: str) -> set[str]:
    """The TensorRT names one module uses: longest `trt.` chains and ROLE.method uses."""
    tree = ast.parse(source)
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or id(node) in inner:
            continue
        chain = _trt_chain(node)
        if chain:
            found.add(chain)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _role(node.value) and not node.attr.startswith("_"):
            found.add(f"{_role(node.value)}.{node.attr}")
    found.discard("__version__")
    return found


def _uses_trt(tree: ast.AST) -> bool:
    """A module that holds the tensorrt module under the name `trt` (variable, parameter or import alias)."""
    return any(isinstance(n, ast.Name) and n.id == "trt" or isinstance(n, ast.arg) and n.arg == "trt" or
               isinstance(n, ast.alias) and n.asname == "trt" for n in ast.walk(tree))


def trt_modules() -> list[Path]:
    """segx's TensorRT code: every module of segx/ and exporters/ that handles the tensorrt module as `trt`."""
    return sorted(p for folder in ("segx", "exporters") for p in (ROOT / folder).rglob("*.py")
                  if _uses_trt(ast.parse(p.read_text())))


def used_names() -> list[str]:
    return sorted(set().union(*(names_in(p.read_text()) for p in trt_modules())))


def _bindings(version: str) -> Path:
    """The unpacked wheel of tensorrt-cu12-bindings==version (downloaded once into CACHE)."""
    folder = CACHE / version
    if (folder / "tensorrt_bindings" / "__init__.py").is_file():
        return folder
    wheels = CACHE / "wheels"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(wheels),
           f"tensorrt-cu12-bindings=={version}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip download of tensorrt-cu12-bindings=={version} timed out (offline?)")
    wheel = next(iter(wheels.glob(f"tensorrt_cu12_bindings-{version}-*.whl")), None)
    if done.returncode or wheel is None:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"cannot download tensorrt-cu12-bindings=={version} from PyPI (offline?): {last}")
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(wheel) as z:  # ZipFile.extractall drops absolute paths and '..' components
        z.extractall(tmp, [n for n in z.namelist() if n.startswith("tensorrt_bindings/")])
    tmp.rename(folder)
    return folder


@pytest.fixture(scope="session")
def stub_libs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stand-in libnvinfer.so.N / libnvonnxparser.so.N / libnvinfer_plugin.so.N (N = 10, 11), built with gcc."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None or not sys.platform.startswith("linux"):
        pytest.skip("needs gcc on Linux to build the stand-in TensorRT libraries")
    out = tmp_path_factory.mktemp("trt-stubs")
    (out / "stub.c").write_text(STUB_C)
    for major in (10, 11):
        for lib in ("nvinfer", "nvonnxparser", "nvinfer_plugin"):
            name = f"lib{lib}.so.{major}"
            subprocess.run([cc, "-shared", "-fPIC", "-o", str(out / name), str(out / "stub.c"),
                            f"-Wl,-soname,{name}"], check=True, capture_output=True)
    return out


def missing_in(version: str, names: list[str], stubs: Path) -> list[str]:
    env = {**os.environ, "LD_LIBRARY_PATH": str(stubs), "PYTHONPATH": str(_bindings(version))}
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(names)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["version"] == version
    return result["missing"]


def test_segx_trt_names_are_collected() -> None:
    """The collector sees the TensorRT code (else the version check below would pass on nothing)."""
    files = {p.relative_to(ROOT).as_posix() for p in trt_modules()}
    assert {"exporters/tensorrt.py", "segx/runtimes/tensorrt_rt.py"} <= files
    names = used_names()
    for expected in ("NetworkDefinitionCreationFlag.STRONGLY_TYPED", "Builder", "OnnxParser", "Runtime",
                     "IBuilderConfig.set_timing_cache", "ICudaEngine.get_tensor_name",
                     "IExecutionContext.execute_async_v3"):
        assert expected in names, names
    banned = ("BuilderFlag", "IInt8", "int8_calibrator", "set_calibration_profile", "EXPLICIT_BATCH")
    assert not [n for n in names if any(b in n for b in banned)], "implicit-precision TensorRT API in segx"


@pytest.mark.parametrize("version", VERSIONS)
def test_every_trt_name_exists_in_the_bindings(version: str, stub_libs: Path) -> None:
    names = used_names()
    assert missing_in(version, names, stub_libs) == [], f"TensorRT {version} lacks names segx uses"


def test_the_probe_sees_removed_names(stub_libs: Path) -> None:
    """What TensorRT 11 removed is there in 10.0 and missing in 11.4 (the check can fail)."""
    removed = ["BuilderFlag.FP16", "BuilderFlag.INT8", "IInt8EntropyCalibrator2", "IBuilderConfig.int8_calibrator",
               "IBuilderConfig.set_calibration_profile"]
    assert missing_in(VERSIONS[0], removed, stub_libs) == []
    assert missing_in(VERSIONS[-1], removed, stub_libs) == removed
    snippet = "def f(trt, config):\n    config.set_flag(trt.BuilderFlag.FP16)\n    config.int8_calibrator = None\n"
    assert {"BuilderFlag.FP16", "IBuilderConfig.set_flag", "IBuilderConfig.int8_calibrator"} <= names_in(snippet)
