"""The OCR engine (rapidocr on onnxruntime) and the settings that make it fast on a small CPU.

Every setting here was measured on the shared receipts (dev and train) against rapidocr's
defaults and kept only when the field scores held (docs/benchmarks.md, Offline extraction).
The models ship inside the rapidocr wheel: nothing is downloaded at run time.
"""

from __future__ import annotations

import functools
import os
from typing import Any

# Recognition pads every text box in a batch to the batch's widest one but, by default, to no
# less than 320 px (6.7 x its 48 px height): on a receipt most boxes are short ("RM", "2.50"),
# so most of the recognition work was padding. A minimum width of one square lets a batch of
# short boxes run at their own width.
REC_IMAGE_SHAPE = [3, 48, 48]

SETTINGS: dict[str, Any] = {
    "rec_img_shape": REC_IMAGE_SHAPE,
}


def ocr_threads() -> int:
    """The cores this process may run on (its CPU affinity: a container's or `taskset`'s
    limit), not the machine's: onnxruntime sizes its pool from the machine, and threads
    beyond the cores it may use only spin and wait for each other (on one core of two,
    that doubled the CPU time per receipt)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def session_options(threads: int) -> Any:
    """onnxruntime options for one model of the engine.

    rapidocr turns the memory arena off, so each inference allocates and frees its
    buffers from the system (a receipt spent a sixth of its CPU time in the kernel doing
    that); with the arena they are reused. Idle pool threads do not spin: on a shared
    machine a spinning thread takes the core from the work it waits for.
    """
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = True
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return options


# The arena grows by what is asked, not to the next power of two: the images differ in size.
CPU = ("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})


def _sessions(engine: Any) -> list[Any]:
    """rapidocr's wrappers of the detection, angle and recognition models."""
    return [engine.text_det.infer, engine.text_cls.infer, engine.text_rec.session]


@functools.cache
def ocr_engine() -> Any:
    """The process's engine, loaded once (a second or more): models, then our sessions."""
    import onnxruntime as ort
    from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped]

    threads = ocr_threads()
    engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1, **SETTINGS)
    options = session_options(threads)
    for wrapper in _sessions(engine):
        # rapidocr builds its sessions with fixed options; the same model is reopened
        # with ours (the wrapper only calls `run` and reads input/output names).
        model = wrapper.session._model_path
        wrapper.session = ort.InferenceSession(model, sess_options=options, providers=[CPU])
    return engine
