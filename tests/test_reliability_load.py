"""Memory under load, the small version of `python -m bench.soak` (docs/reliability.md): predicting a 300-frame
video through the same pieces as `segx predict` (segx.predict's threaded pipeline + the output writer, video and
region JSON) holds a bounded amount of memory: the peak over frames 200-300 is no higher than over frames 100-200."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

from badinputs import write_video
from badmodels import save_onnx, tiny_onnx_model

from segx.predict import predict
from segx.predict.writers import OutputWriter

MB = 1 << 20


def test_predict_memory_stays_flat(tmp_path: Path) -> None:
    video = write_video(tmp_path / "long.mp4", n=300, w=160, h=120)
    model = tmp_path / "tiny.onnx"
    save_onnx(tiny_onnx_model())(model)
    peaks: list[int] = []
    tracemalloc.start()
    try:
        writer = OutputWriter(tmp_path / "out", overlays=True, regions=True)
        with predict(video, model) as run:
            for r in run:
                writer.submit(r)
                if r.frame_index in (100, 200, 299):
                    peaks.append(tracemalloc.get_traced_memory()[1])
                    tracemalloc.reset_peak()
        writer.close()
    finally:
        tracemalloc.stop()
    assert run.frames == 300 and (tmp_path / "out" / "long.mp4").is_file()
    first, second = peaks[1], peaks[2]  # peaks[0]: start-up, before the queues reached their steady state
    # steady peak ≈ 7.5 MB; keeping each frame's Result (≈ 0.2 MB) somewhere adds ≈ 22 MB per 100 frames (tried)
    assert second <= first + 8 * MB, f"peak traced memory grew from {first / MB:.1f} MB to {second / MB:.1f} MB"
