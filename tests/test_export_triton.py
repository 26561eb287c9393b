"""`segx export --fmt triton*`: a Triton model repository (config.pbtxt + version folder) whose config parses into
Triton's ModelConfig protobuf and matches the exported model's tensors; the model inside passes its parity check."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import exporters
from exporters.triton import BACKENDS, model_config
from segx.meta import ModelMeta
from segx.runtimes import load_runtime

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
ARCH = "lraspp_mobilenet_v3_large"


def parse(text: str) -> object:
    from google.protobuf import text_format

    return text_format.Parse(text, model_config_pb2.ModelConfig())


@pytest.mark.parametrize("fmt", sorted(BACKENDS))
@pytest.mark.parametrize("head", ["logits", "mask", "mask+conf"])
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_config_parses_into_model_config(fmt: str, head: str, dynamic: bool) -> None:
    meta = ModelMeta(arch=ARCH, imgsz=96, dynamic=dynamic, head=head)
    cfg = parse(model_config(meta, fmt))
    assert cfg.name == "segx"
    assert (cfg.platform or cfg.backend) == BACKENDS[fmt].platform
    assert cfg.default_model_filename == BACKENDS[fmt].file
    types = model_config_pb2.DataType
    assert [(i.name, i.data_type) for i in cfg.input] == [("images", types.Value("TYPE_FP32"))]
    lead = [] if dynamic else [1]
    hw = [-1, -1] if dynamic else [96, 96]
    assert list(cfg.input[0].dims) == [*lead, 3, *hw]
    outputs = {o.name: (types.Name(o.data_type), list(o.dims)) for o in cfg.output}
    want = {"logits": {"logits": ("TYPE_FP32", [*lead, 21, *hw])},
            "mask": {"mask": ("TYPE_UINT8", [*lead, *hw])},
            "mask+conf": {"mask": ("TYPE_UINT8", [*lead, *hw]), "confidence": ("TYPE_FP32", [*lead, *hw])}}[head]
    assert outputs == want
    assert cfg.max_batch_size == (8 if dynamic else 0)
    assert cfg.HasField("dynamic_batching") == dynamic
    assert [(g.count, model_config_pb2.ModelInstanceGroup.Kind.Name(g.kind)) for g in cfg.instance_group] == \
        [(1, BACKENDS[fmt].kind)]
    assert ModelMeta.from_dict(__import__("json").loads(cfg.parameters["segx_meta"].string_value)) == meta


@pytest.mark.slow
def test_triton_onnx_repository(tmp_path: Path) -> None:
    """A dynamic mask-head repository: layout, config matching the ONNX file's tensors, the model answers."""
    import torch

    from segx.checkpoint import make_checkpoint
    from segx.io import save_checkpoint
    from segx.models import build_model

    torch.manual_seed(0)
    ckpt = save_checkpoint(make_checkpoint(build_model(ARCH).eval(), ModelMeta(arch=ARCH, imgsz=64)),
                           tmp_path / "best.pt")
    result = exporters.run_export(ckpt, "triton", imgsz=64, dynamic=True, head="mask", n_verify=1)
    assert result.passed, result.summary()
    repo = tmp_path / "best_dynamic_mask_triton"
    assert result.path == repo / "segx" / "1" / "model.onnx"
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")) == \
        ["segx", "segx/1", "segx/1/model.onnx", "segx/config.pbtxt"]
    cfg = parse((repo / "segx" / "config.pbtxt").read_text())
    with load_runtime(result.path) as rt:
        inputs = rt.session.get_inputs()
        outputs = rt.session.get_outputs()
        assert [i.name for i in inputs] == [i.name for i in cfg.input]
        assert [(o.name, o.type) for o in outputs] == [("mask", "tensor(uint8)")] == \
            [(o.name, "tensor(uint8)") for o in cfg.output]
        mask, _ = rt.predict_mask(np.zeros((3, 3, 64, 96), np.float32))
        assert mask.shape == (3, 64, 96) and cfg.max_batch_size >= 3
