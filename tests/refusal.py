"""The harness of the bad-input corpus: a sandbox per case (inputs, the output folder, a 'victim' folder beside it)
and `Sandbox.refused(args, ...)`, which runs the CLI in-process and checks the contract for bad input: exit 1, exactly
one `segx: error:` line naming the file and the problem and, as stderr is not a terminal here, no other stderr line
but complete INFO log lines of work begun (no warning, wrapped line or progress frame), no traceback (nor native library noise on the real stderr),
and no file created, changed or deleted anywhere it can see."""
from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from badinputs import diff, snapshot
from click.testing import CliRunner, Result

from segx.cli import cli


INFO_LINE = re.compile(r"INFO {5}\S")  # one plain log record (segx.log off a terminal): "INFO     message"


@dataclass
class Sandbox:
    root: Path
    capfd: pytest.CaptureFixture[str]
    watch: list[Path] = field(default_factory=list)  # read-only inputs shared between cases, also watched

    @property
    def inp(self) -> Path:
        return self.root / "in"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def copy_tree(self, voc: Path) -> Path:
        """A private copy of a VOC2012 folder, to break."""
        return Path(shutil.copytree(voc, self.inp / "VOC2012"))

    def invoke(self, args: Sequence[object]) -> tuple[Result, str]:
        """Run `segx ARGS` in-process; returns (click result, what native code wrote to the real stderr)."""
        self.capfd.readouterr()
        res = CliRunner().invoke(cli, [str(a) for a in args])
        return res, self.capfd.readouterr().err

    def refused(self, args: Sequence[object], *, names: Sequence[str], pattern: str, in_table: bool = False,
                allow: Sequence[Path] = ()) -> str:
        """Assert the bad-input contract for `segx ARGS`; returns the error line.

        names: what the error must name (file names); pattern: regex the error must match (the problem).
        in_table: the names/problem are in the rich table above the error line (segx data check).
        allow: paths that may appear (e.g. a verified download kept for the next try)."""
        before = snapshot(self.root, *self.watch)
        res, native = self.invoke(args)
        stderr = res.stderr
        errors = [line for line in stderr.splitlines() if line.startswith("segx: error:")]
        context = f"exit {res.exit_code}\n--- stderr\n{stderr}\n--- stdout\n{res.stdout}\n--- native\n{native}"
        assert res.exit_code == 1, context
        assert res.exception is None or isinstance(res.exception, SystemExit), (repr(res.exception), context)
        assert len(errors) == 1, context
        if not in_table:  # stderr is not a terminal: the error is one line, the last, after at most INFO lines
            lines = stderr.strip().splitlines()
            assert lines[-1] == errors[0], f"the error is not the last stderr line:\n{context}"
            assert all(INFO_LINE.match(line) for line in lines[:-1]), f"more than one error line:\n{context}"
        assert "Traceback" not in stderr + res.stdout + native, context
        assert not native.strip(), f"native code wrote to stderr:\n{context}"
        where = " ".join(stderr.split()) if in_table else errors[0]
        for name in names:
            assert name in where, f"error does not name {name!r}:\n{context}"
        assert re.search(pattern, where, re.IGNORECASE), f"error does not match {pattern!r}:\n{context}"
        changes = [c for c in diff(before, snapshot(self.root, *self.watch)) if Path(c[2:]) not in allow]
        assert not changes, f"a failing command changed files: {changes}\n{context}"
        return errors[0]

    def succeeds(self, args: Sequence[object]) -> Result:
        """The positive control: the same harness with good input exits 0 with no error line."""
        res, native = self.invoke(args)
        assert res.exit_code == 0, f"{res.stderr}\n{res.stdout}\n{native}"
        assert "segx: error:" not in res.stderr and "Traceback" not in res.stderr + native
        return res


CHECKPOINT_CONSUMERS = ("eval", "export", "predict", "train_weights", "train_resume")  # every command that loads one


def consumers(model: Path, box: Sandbox, shared: dict[str, Path]) -> dict[str, list[object]]:
    """Every command that takes a checkpoint, with `model` in that place."""
    train = ["train", "--data", shared["voc"], "--arch", "lraspp_mobilenet_v3_large", "--epochs", "1", "--batch", "1",
             "--crop", 32, "--workers", "0", "--device", "cpu"]
    return {
        "eval": ["eval", "--data", shared["voc"], "--model", model, "--json", box.out / "e.json", "--device", "cpu"],
        "export": ["export", "--model", model, "--fmt", "onnx", "--imgsz", 32, "--out", box.out],
        "predict": ["predict", shared["image"], "--model", model, "--out", box.out],
        "train_weights": [*train, "--out", box.out / "run", "--weights", model],
        "train_resume": ["train", "--resume", "--out", model.parent],
    }


def make_sandbox(tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                 watch: Sequence[Path] = ()) -> Sandbox:
    """in/, a 'victim' folder with a file that must never change, and the working directory (so default output
    folders such as runs/ would land inside the sandbox and be seen)."""
    box = Sandbox(tmp_path, capfd, list(watch))
    box.inp.mkdir()
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "keep.txt").write_text("do not touch\n")
    monkeypatch.chdir(tmp_path)
    return box


@pytest.fixture(autouse=True, scope="module")
def wide_console() -> object:
    """Rich tables on a wide console, so paths and problems are not wrapped across lines."""
    from segx.log import console

    saved = console._width
    console.width = 400
    yield
    console._width = saved
