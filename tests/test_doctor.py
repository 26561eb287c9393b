"""`segx doctor` tells the truth about this machine (compared with what the packages themselves report), flags both
onnxruntime packages in one environment, and gives the exact install line for anything missing."""
from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from click.testing import CliRunner

from segx import doctor
from segx.cli import cli


@pytest.fixture(scope="module")
def findings() -> dict[str, doctor.Finding]:
    return {f.name: f for f in doctor.diagnose()}


def test_torch_and_cuda_as_torch_reports_them(findings: dict[str, doctor.Finding]) -> None:
    assert findings["torch"].version == torch.__version__
    gpus = [name for name in findings if name.startswith("cuda:")]
    assert len(gpus) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(0)
        assert f"compute capability {major}.{minor}" in findings["cuda:0"].detail
    else:
        assert findings["cuda"].status == "missing"


def test_onnxruntime_and_openvino_as_they_report_themselves(findings: dict[str, doctor.Finding]) -> None:
    import onnxruntime as ort
    import openvino as ov

    f = findings["onnxruntime"]
    assert f.status == "ok" and f.version == ort.__version__
    assert f.detail.endswith("providers: " + ", ".join(ort.get_available_providers()))
    assert findings["openvino"].detail == "devices: " + ", ".join(ov.Core().available_devices)


def test_tensorrt_truth(findings: dict[str, doctor.Finding]) -> None:
    f = findings["tensorrt"]
    if importlib.util.find_spec("tensorrt") is None:
        assert f.status == "missing" and f.install == "pip install 'segx[gpu]'"
    else:
        import tensorrt

        assert f.version == tensorrt.__version__
    usable = importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()
    assert (findings["runtime tensorrt (cuda)"].status == "ok") == usable
    assert findings["runtime onnxruntime (cpu)"].status == "ok"


def test_both_onnxruntimes_and_missing_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "dist_version", lambda *names: (names[0], "1.0"))
    mixed = {f.name: f for f in doctor.check_onnxruntime(cuda=False)}
    assert mixed["onnxruntime packages"].status == "warn" and mixed["onnxruntime packages"].install == \
        doctor.ORT_MIX_FIX
    monkeypatch.setattr(doctor, "_module", lambda name: None)
    for check, extra in ((lambda: doctor.check_onnxruntime(cuda=True), "gpu"),
                         (lambda: doctor.check_onnxruntime(cuda=False), "cpu"), (doctor.check_openvino, "cpu"),
                         (lambda: doctor.check_tensorrt(cuda=False), "gpu")):
        (f,) = check()
        assert f.status == "missing" and f.install == f"pip install 'segx[{extra}]'"


def test_cli_table_and_json() -> None:
    res = CliRunner().invoke(cli, ["doctor", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["torch"]["version"] == torch.__version__ and "runtime torch (cpu)" in rows
    table = CliRunner().invoke(cli, ["doctor"])
    assert table.exit_code == 0 and "segx doctor" in table.output
    if importlib.util.find_spec("tensorrt") is None:
        assert "pip install 'segx[gpu]'" in table.output  # not eaten as rich markup
