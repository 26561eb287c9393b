"""Per-layer INT8 sensitivity and metric-driven mixed precision for the Q/DQ ONNX models (ONNX Runtime, TensorRT):
the graph's layer groups (a block per module prefix of its conv weights, plus the hard-swish, squeeze-excite and final
upsample kinds), each one's cost measured as the mIoU drop recovered when only that group stays float (ONNX Runtime,
on labelled calibration images, never the gate's), and the greedy search that keeps the costliest groups in float
until the drop is within TUNE_TARGET."""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

if TYPE_CHECKING:
    from exporters.job import ExportJob
    from exporters.qdq import Calibrated

log = logging.getLogger(__name__)

TUNE_TARGET = 0.5     # mIoU points: the search aims at half the int8 gate, so the gate's own sample has room
TUNE_IMAGES = 16      # labelled calibration images the drop is measured on
MAX_FLOAT_GROUPS = 6  # the search gives up (and the gate decides) after keeping this many groups in float


@dataclass(frozen=True)
class Group:
    name: str
    nodes: tuple[str, ...]


def layer_groups(model: onnx.ModelProto) -> list[Group]:
    """Blocks: every node joins the group of the last conv before it (module prefix of its weight, 3 levels); kinds:
    hard-swish (HardSigmoid+Mul on one tensor), squeeze-excite (the nodes between a ReduceMean and its Mul) and the
    final upsample (Resize nodes writing a graph output)."""
    blocks: dict[str, list[str]] = defaultdict(list)
    kinds: dict[str, list[str]] = defaultdict(list)
    inits = {i.name for i in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    current = "input"
    for node in model.graph.node:
        weight = next((i for i in node.input[1:] if i in inits), None) if node.op_type == "Conv" else None
        if weight:
            current = ".".join(weight.split(".")[:3])
        blocks[current].append(node.name)
        if node.op_type == "Resize" and set(node.output) & outputs:
            kinds["final upsample"].append(node.name)
        if weight and ".fc" in weight or node.op_type == "ReduceMean":
            kinds["squeeze-excite"].append(node.name)
    producers = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.op_type == "Mul" and len(node.input) == 2:
            a, b = (producers.get(i) for i in node.input)
            for gate, x in ((a, node.input[1]), (b, node.input[0])):
                if gate is not None and gate.op_type == "HardSigmoid" and gate.input[0] == x:
                    kinds["hard-swish"] += [gate.name, node.name]
    return [Group(k, tuple(v)) for k, v in {**blocks, **kinds}.items() if v]


class Scorer:
    """mIoU drop (points) of a quantised model against the float one on the first n labelled calibration images,
    scored like the accuracy protocol (images resized to the export size, class maps at the mask's size)."""

    def __init__(self, cal: Calibrated, n: int = TUNE_IMAGES) -> None:
        from segx.evaluate import fit_input

        images = cal.images
        size = (images.imgsz, images.imgsz)
        self.samples = [(fit_input(x[None], size).numpy(), m.numpy()) for x, m in
                        (images.dataset[i] for i in images.indices[:n])]
        self.input_name = cal.input_name
        outs = self._run(cal.pre)
        self.num_classes = outs[0].shape[1]
        self.reference = [self._classes(out, m) for out, (_, m) in zip(outs, self.samples)]

    def _run(self, path: Path) -> list[np.ndarray]:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return [sess.run(None, {self.input_name: x})[0] for x, _ in self.samples]

    @staticmethod
    def _classes(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        from segx.evaluate import class_map_at

        return class_map_at(torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32)), mask.shape[-2:]).numpy()

    def _miou(self, preds: list[np.ndarray]) -> float:
        from segx.metrics import ConfusionMatrix, miou_of

        cm = ConfusionMatrix(self.num_classes)
        for p, (_, m) in zip(preds, self.samples):
            cm.update(p[0], m)
        return float(miou_of(cm.mat))

    def drop(self, path: Path) -> float:
        preds = [self._classes(out, m) for out, (_, m) in zip(self._run(path), self.samples)]
        return 100 * (self._miou(self.reference) - self._miou(preds))


def rank(cal: Calibrated, form: str, scorer: Scorer, groups: list[Group], full: float) -> list[dict[str, Any]]:
    """Every group's cost: the drop recovered when only it stays float (quantise all but it), costliest first."""
    from exporters.qdq import build

    rows = []
    for g in groups:
        d = scorer.drop(build(cal, cal.pre.with_name("probe.onnx"), form, g.nodes))
        rows.append({"group": g.name, "nodes": len(g.nodes), "drop_without": round(d, 3),
                     "cost": round(full - d, 3)})
    return sorted(rows, key=lambda r: -r["cost"])


def tune(cal: Calibrated, job: ExportJob, form: str) -> list[str]:
    """Node names to keep in float: none when the fully quantised model is within TUNE_TARGET on the tuning images,
    else the costliest groups, added one at a time until it is (at most MAX_FLOAT_GROUPS). Fills job.report."""
    from exporters.qdq import build

    scorer = Scorer(cal)
    full = scorer.drop(build(cal, cal.pre.with_name("all.onnx"), form))
    job.report["tuning"] = f"int8 drop {full:.2f} pt on {len(scorer.samples)} calibration images " \
                           f"(target ≤ {TUNE_TARGET:g} pt)"
    if full <= TUNE_TARGET and not job.opts.explain:
        return []
    groups = {g.name: g for g in layer_groups(onnx.load(cal.pre))}
    ranked = rank(cal, form, scorer, list(groups.values()), full)
    if job.opts.explain:
        job.report["sensitivity"] = ranked
    exclude: list[str] = []
    kept: list[str] = []
    drop = full
    for row in ranked[:MAX_FLOAT_GROUPS]:
        if drop <= TUNE_TARGET or row["cost"] <= 0:
            break
        exclude += [n for n in groups[row["group"]].nodes if n not in exclude]
        kept.append(row["group"])
        drop = scorer.drop(build(cal, cal.pre.with_name("mixed.onnx"), form, exclude))
        log.info("INT8: keeping %s in float: drop %.2f pt", row["group"], drop)
    if kept:
        job.report["float_layers"] = kept
        job.report["tuning"] += f"; {', '.join(kept)} kept in float: {drop:.2f} pt"
    return exclude
