"""How segx starts Python subprocesses (bench's `bench.worker`, ...): `python -c BOOT MODULE ARGS` that drops the
working directory from the import path and puts the root of the running segx first, so a folder named `segx` (or
`bench`) in the working directory never shadows the package in the child."""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

# sys.path[0] is the working directory for `-c` (and `-m`): drop it, then run MODULE as __main__ with argv[1:] = ARGS
BOOT = ("import runpy, sys; del sys.path[0]; del sys.argv[0]; "
        "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")


def package_root() -> Path:
    """The folder holding the running segx package (a source tree, or site-packages)."""
    return Path(__file__).resolve().parent.parent


def python_module(module: str, *args: str, env: Mapping[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """(argv, env) running `python -m module args` with this interpreter, importing segx from `package_root()`."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([str(package_root()), *filter(None, env.get("PYTHONPATH", "").split(
        os.pathsep))])
    return [sys.executable, "-c", BOOT, module, *args], env
