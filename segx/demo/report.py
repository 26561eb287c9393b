"""The demo report: report.md (links to the files) and a self-contained report.html (images embedded), both built
from one list of sections so the two never disagree. Written atomically."""
from __future__ import annotations

import base64
import html
import platform
import time
from pathlib import Path
from typing import Any

from segx.demo.config import DemoResult, config_dict
from segx.errors import SegxError
from segx.io import atomic_path, atomic_write_text

REAL_VOC = """segx data download --root data --sbd
segx train --data data --arch deeplabv3_mobilenet_v3_large --split aug --weights imagenet --epochs 30 --batch 16 --amp
segx eval --data data --model runs/deeplabv3_mobilenet_v3_large/best.pt --json eval.json
segx export --model runs/deeplabv3_mobilenet_v3_large/best.pt --fmt trt --fp16 --data data
segx bench --models runs/deeplabv3_mobilenet_v3_large --data data --device cuda
segx predict camera.mp4 --model runs/deeplabv3_mobilenet_v3_large/best_fp16.engine --save-masks"""

Table = tuple[list[str], list[list[str]]]


def _pct(v: Any) -> str:
    return "—" if v is None else f"{100 * float(v):.2f}"


def _num(v: Any, fmt: str = ".2f") -> str:
    return "—" if v is None else format(float(v), fmt)


def metrics_table(m: dict[str, Any]) -> Table:
    keys = ("miou", "pixel_acc", "mean_acc", "fwiou", "boundary_f1")
    return ["metric (%)", *keys], [["val", *[_pct(m.get(k)) for k in keys]]]


def per_class_table(m: dict[str, Any]) -> Table:
    return ["class", "IoU (%)"], [[k, _pct(v)] for k, v in (m.get("per_class_iou") or {}).items()]


def _sample(n: Any, ci: Any) -> str:
    """The verdict's sample size and the bootstrap 95 % interval of its mIoU drop."""
    return "—" if n is None else f"{n}" + ("" if not ci else f" / {ci[0]:+.2f}..{ci[1]:+.2f}")


def export_table(exports: list[dict[str, Any]]) -> Table:
    head = ["format", "asked", "kept", "size MB", "export s", "agreement %", "max Δlogit", "ΔmIoU pt",
            "images / drop 95% CI pt", "verdict"]
    rows = [[e["format"], e["requested"], e.get("precision") or "—", _num(e.get("size_mb")), _num(e.get("seconds"), ".1f"),
             _pct(e.get("agreement")), _num(e.get("max_abs_diff"), ".4f"),
             _num(None if e.get("miou_delta") is None else 100 * e["miou_delta"]),
             _sample(e.get("images"), e.get("drop_ci")),
             ("PASS" if e.get("passed") else "FAIL") + (f" — {e['summary']}" if not e.get("passed") or
                                                        e.get("precision") != e["requested"] else "")]
            for e in exports]
    return head, rows


def heads_summary(rows: list[dict[str, Any]]) -> str:
    from bench.report import heads_summary as summary

    return summary(rows) if len({r.get("head") or "logits" for r in rows}) > 1 else ""


def bench_table(bench: dict[str, Any]) -> Table:
    head = ["runtime", "precision", "head", "batch", "size MB", "mIoU %", "ΔmIoU pt", "images / drop 95% CI pt",
            "agreement %", "p50 ms", "FPS", "status"]
    rows = [[r["runtime"], r["precision"], r.get("head") or "logits", str(r["batch"]), _num(r.get("size_mb")),
             _pct(r.get("miou")), _num(None if r.get("miou_delta") is None else 100 * r["miou_delta"]),
             _sample(r.get("parity_images"), r.get("drop_ci")), _pct(r.get("pixel_agreement")),
             _num(r.get("p50_ms")), _num(r.get("fps"), ".1f"),
             r["status"] + (f" — {r['error']}" if r.get("error") else "")] for r in bench.get("rows", [])]
    return head, rows


def _overlay_samples(res: DemoResult, n: int = 3) -> list[Path]:
    """A few frames of the predicted video, saved as JPEGs for the report."""
    import cv2

    video = Path(res.predict.get("out", "")) / (Path(res.predict.get("source", "x")).stem + ".mp4")
    cap = cv2.VideoCapture(str(video))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 0
    paths: list[Path] = []
    for k in range(n):
        cap.set(cv2.CAP_PROP_POS_FRAMES, (k * max(total, 1)) // n)
        ok, frame = cap.read()
        if not ok:
            break
        path = res.config.out / "report_assets" / f"overlay_{k}.jpg"
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp), frame):  # raising inside atomic_path leaves no empty file behind
                raise SegxError(f"{path}: OpenCV could not write the overlay JPEG")
        paths.append(path)
    cap.release()
    return paths


def sections(res: DemoResult) -> list[tuple[str, list[Any]]]:
    """(title, blocks); a block is a str paragraph, a Table, ("img", Path) or ("pre", str)."""
    m, run = res.metrics, res.run_dir
    files = [p for p in (run / "best.pt", run / "last.pt", run / "metrics.jsonl", run / "curves.png") if p.exists()] \
        if run else []
    files += [Path(e["path"]) for e in res.exports if e.get("path")]
    files += [res.config.out / "eval.json", *sorted((res.config.out / "bench").glob("bench.*"))]
    files += [Path(res.predict["out"])] if res.predict.get("out") else []
    samples = _overlay_samples(res) if res.predict else []
    return [
        ("What this is", [
            "**The data are synthetic**: `segx data synth` draws the 20 VOC classes as textured shapes in the exact VOC "
            "layout, so the whole pipeline runs on a CPU in minutes. These numbers say the pipeline works; they are not "
            "VOC results (see docs/sota.md for those).",
            f"Run on {platform.node()} ({platform.processor() or platform.machine()}), device `{res.device}`, "
            f"{time.strftime('%Y-%m-%d %H:%M')}. Stage times (s): "
            + ", ".join(f"{k} {v}" for k, v in res.timings.items()) + ".",
            ("pre", "\n".join(f"{k} = {v}" for k, v in config_dict(res.config).items()))]),
        ("Validation metrics", [f"`{m.get('arch')}` on {m.get('images')} val images at original resolution.",
                                metrics_table(m)]),
        ("Per-class IoU", [per_class_table(m)]),
        ("Training curves", [("img", run / "curves.png")] if run else []),
        ("Exports and parity", ["Each export is checked against PyTorch on val images (FP32: ≥ 99.9 % argmax "
                                "agreement; INT8: ≤ 1.0 mIoU point lost; a failed INT8 keeps the best precision "
                                "that passed).", export_table(res.exports)]),
        ("Benchmark", [f"`{res.bench.get('command', 'segx bench')}`" if res.bench.get("command") else
                       "Accuracy and latency per runtime × precision (batch 1).", bench_table(res.bench),
                       heads_summary(res.bench.get("rows", [])),
                       ("img", res.config.out / "bench" / "bench.png")]),
        ("Prediction on a video", [
            f"`segx predict {res.predict.get('source')} --model {res.predict.get('model')} "
            f"--runtime {str(res.predict.get('runtime', '')).split('/')[0]} --precision {res.predict.get('precision')}`: "
            f"{res.predict.get('frames')} frames at {_num(res.predict.get('fps'), '.1f')} FPS end to end.",
            *[("img", p) for p in samples]]),
        ("Output files", [("pre", "\n".join(str(p) for p in files))]),
        ("Real VOC on a GPU", [("pre", REAL_VOC)]),
    ]


def _md_table(t: Table) -> str:
    head, rows = t
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def to_markdown(secs: list[tuple[str, list[Any]]], base: Path) -> str:
    out = ["# segx demo report", ""]
    for title, blocks in secs:
        out += [f"## {title}", ""]
        for b in blocks:
            if isinstance(b, str):
                out.append(b)
            elif b[0] == "img":
                out.append(f"![{b[1].stem}]({_rel(b[1], base)})")
            elif b[0] == "pre":
                out.append("```\n" + b[1] + "\n```")
            else:
                out.append(_md_table(b))
            out.append("")
    return "\n".join(out)


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _inline(text: str) -> str:
    """Escape, then render `code` and **bold** spans."""
    parts = html.escape(text).split("`")
    text = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    bold = text.split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(bold))


def _img_html(path: Path) -> str:
    if not path.exists():
        return f"<p class=missing>(missing: {html.escape(str(path))})</p>"
    mime = "image/png" if path.suffix == ".png" else "image/jpeg"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:{mime};base64,{data}">'


def to_html(secs: list[tuple[str, list[Any]]]) -> str:
    body = []
    for title, blocks in secs:
        body.append(f"<h2>{html.escape(title)}</h2>")
        for b in blocks:
            if isinstance(b, str):
                body.append(f"<p>{_inline(b)}</p>")
            elif b[0] == "img":
                body.append(_img_html(b[1]))
            elif b[0] == "pre":
                body.append(f"<pre>{html.escape(b[1])}</pre>")
            else:
                head, rows = b
                body.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
                            + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rows)
                            + "</table>")
    css = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
           "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
           "font-size:90%}th{background:#eee}img{max-width:100%;margin:.5em 0;border:1px solid #ddd}"
           "pre{background:#f6f6f6;padding:.8em;overflow:auto}code{background:#f0f0f0;padding:0 3px}")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>segx demo report</title><style>{css}</style>"
            f"</head><body><h1>segx demo report</h1>{''.join(body)}</body></html>")


def write_report(res: DemoResult) -> dict[str, Path]:
    secs = sections(res)
    out = res.config.out
    return {"md": atomic_write_text(out / "report.md", to_markdown(secs, out)),
            "html": atomic_write_text(out / "report.html", to_html(secs))}
