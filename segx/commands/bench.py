"""`segx bench`: accuracy parity and speed of every model x runtime x precision x batch (parses, calls run_bench).
List options take comma lists, several values after one flag, or repeats: `--archs a,b` = `--archs a b`."""
from __future__ import annotations

import os
import shlex
import sys
from typing import Any

import click

from segx.errors import SegxError


class ListOption(click.Option):
    """A repeatable option that also takes several space-separated values after one flag (`--models A B`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["multiple"] = True
        super().__init__(*args, **kwargs)

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        for name in self.opts:
            opt = parser._long_opt.get(name) or parser._short_opt.get(name)  # click's parser has no public hook
            if opt is None:
                continue
            original = opt.process

            def process(value: Any, state: Any, original: Any = original) -> None:
                original(value, state)
                while state.rargs and not state.rargs[0].startswith("-"):
                    original(state.rargs.pop(0), state)

            opt.process = process


def split_list(values: tuple[str, ...]) -> tuple[str, ...]:
    """('a,b', 'c') -> ('a', 'b', 'c'); empty items dropped, order kept."""
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def parse_batches(values: tuple[str, ...]) -> tuple[int, ...]:
    out = []
    for v in split_list(values) or ("1",):
        if not v.isdigit() or int(v) < 1:
            raise SegxError(f"--batch takes positive integers, e.g. --batch 1,8 (got '{v}')")
        out.append(int(v))
    return tuple(dict.fromkeys(out))


def _command_line() -> str | None:
    """The command line as typed, when run through the `segx` entry point (else run_bench writes an equivalent)."""
    if os.path.basename(sys.argv[0]) == "segx":
        return shlex.join(["segx", *sys.argv[1:]])
    return None


def _serve_bench(models: tuple[str, ...], clients: int, duration: float, requests: int,
                 options: dict[str, Any]) -> None:
    from bench.serve_load import LoadConfig, run_serve_bench, summary

    if not models:
        raise SegxError("--serve needs --models MODEL_FILE (any model segx loads)")
    config = LoadConfig(clients=clients, seconds=duration, requests=requests, imgsz=options["imgsz"],
                        threads=options["threads"])
    for model in models:
        click.echo(f"{model}: {summary(run_serve_bench(model, config, options['out']))}")


@click.command("bench")
@click.option("--models", cls=ListOption, metavar="PATH...", help="Trained checkpoints: .pt files or run folders "
              "(best.pt, else last.pt).")
@click.option("--archs", cls=ListOption, metavar="NAME...", help="Untrained random-init archs (speed; a checkpoint "
              "is written to OUT/models/random_init).")
@click.option("--runtimes", cls=ListOption, metavar="NAME...", help="torch, compile, torchscript, onnxruntime, "
              "openvino, tensorrt  [default: torch,onnxruntime,openvino on cpu; torch,onnxruntime,tensorrt on cuda]")
@click.option("--precisions", cls=ListOption, metavar="NAME...", help="fp32, fp16, bf16, int8  "
              "[default: fp32,bf16,int8 on cpu; fp32,fp16,int8 on cuda]")
@click.option("--data", default=None, metavar="VOC", help="VOC folder: parity and mIoU per row (and INT8 "
              "calibration). Without it rows are timed only and INT8 calibrates on a synthetic set.")
@click.option("--split", default="val", show_default=True, help="Split list of --data for parity and calibration.")
@click.option("--n-images", type=click.IntRange(min=1), default=None,
              help="Cap parity at the first N images of the split [default: the whole split].")
@click.option("--imgsz", type=int, default=512, show_default=True, help="Square input size of every row.")
@click.option("--batch", "batches", cls=ListOption, metavar="N...", help="Batch sizes  [default: 1]")
@click.option("--threads", type=int, default=None, help="CPU threads per runtime  [default: the runtime's own]")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--out", default="runs/bench", show_default=True, help="Folder for bench.{json,csv,md,png} and the "
              "exported models.")
@click.option("--max-miou-drop", type=float, default=1.0, show_default=True, help="A row losing more mIoU points "
              "than this against torch fp32 fails; any failing row makes the exit status 1 (after the reports).")
@click.option("--strict", is_flag=True, help="Rows that could not export or run (❌ error) also make the exit 1.")
@click.option("--min-iters", type=int, default=50, show_default=True, help="Timed runs: at least this many ...")
@click.option("--min-time", type=float, default=2.0, show_default=True, help="... and at least this many seconds.")
@click.option("--repeat", type=int, default=1, show_default=True, help="Timing rounds over the whole matrix "
              "(interleaved); each row reports its median round. Use 3+ on a shared or virtual machine.")
@click.option("--timeout", type=float, default=900.0, show_default=True, help="Seconds per row before it is an "
              "error row.")
@click.option("--heads", "heads", cls=ListOption, metavar="HEAD...", help="Deployment heads to compare (logits, "
              "mask, mask+conf): each export made with that head, every row timed to a uint8 mask in host memory "
              "(the logits head's argmax included)  [default: logits, timed to the logits]")
@click.option("--serve", is_flag=True, help="Load-test `segx serve` instead of the matrix: each --models file "
              "(any model segx loads) in-process, then served on loopback to --clients concurrent gRPC clients.")
@click.option("--clients", type=int, default=4, show_default=True, help="--serve: concurrent clients (<= 64).")
@click.option("--duration", type=float, default=30.0, show_default=True, help="--serve: seconds (<= 600) ...")
@click.option("--requests", type=int, default=2000, show_default=True, help="--serve: ... or requests, whichever "
              "ends first.")
def command(models: tuple[str, ...], archs: tuple[str, ...], runtimes: tuple[str, ...], precisions: tuple[str, ...],
            batches: tuple[str, ...], heads: tuple[str, ...], serve: bool, clients: int, duration: float,
            requests: int, **options: Any) -> None:
    """Benchmark every model x runtime x precision x batch: size, parity (mIoU, ΔmIoU, pixel agreement, max
    |Δlogit| against torch fp32), p50/p95/p99 latency and images/s, each row in its own subprocess.

    A row is ✅ pass, ❎ fail (ran but lost more than --max-miou-drop or its precision's agreement gate),
    ❌ error (could not export or run; the reason is shown) or ⏭ skipped (runtime not installed, device absent,
    or a combination that makes no sense, e.g. onnxruntime bf16). One row's failure never stops the run.

    \b
    Examples:
      segx bench --archs lraspp_mobilenet_v3_large,deeplabv3_mobilenet_v3_large --imgsz 512 --threads 2 --repeat 3
      segx bench --models runs/lraspp_mobilenet_v3_large --data data/synth --runtimes torch onnxruntime openvino
      segx bench --models runs/A/best.pt runs/B --precisions fp32,int8 --batch 1,8 --out runs/bench_ab
      segx bench --archs deeplabv3_resnet50 --device cuda --runtimes torch,tensorrt --precisions fp32,fp16 --batch 1 16
      segx bench --archs lraspp_mobilenet_v3_large --runtimes openvino,onnxruntime --precisions fp32,int8 \\
        --heads logits,mask --imgsz 512 --repeat 3
      segx bench --serve --models runs/lraspp/best_mask.xml --clients 4 --requests 2000 --imgsz 512
    """
    if serve:
        _serve_bench(split_list(models), clients, duration, requests, options)
        return
    from bench.run import BenchConfig, run_bench

    run_bench(BenchConfig(models=split_list(models), archs=split_list(archs), runtimes=split_list(runtimes),
                          precisions=split_list(precisions), batches=parse_batches(batches), heads=split_list(heads),
                          command=_command_line(), **options))
