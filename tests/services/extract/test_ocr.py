"""The OCR engine's settings: what the receipts were measured with is what the engine runs."""

from __future__ import annotations

import json
import subprocess
import sys

from PIL import Image, ImageDraw, ImageFont

from services.extract.reading.pages import ocr_page

# Loads the engine in a process of its own, pinned to one core: the thread count follows
# the process's allowed cores, which the test process must not change for itself.
PROBE = """
import json, os
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from services.extract.reading.ocr import ocr_engine
engine = ocr_engine()
sessions = [engine.text_det.infer, engine.text_cls.infer, engine.text_rec.session]
report = []
for wrapper in sessions:
    options = wrapper.session.get_session_options()
    report.append({
        "threads": options.intra_op_num_threads,
        "arena": options.enable_cpu_mem_arena,
        "spinning": options.get_session_config_entry("session.intra_op.allow_spinning"),
    })
print(json.dumps({"sessions": report, "rec_shape": engine.text_rec.rec_image_shape}))
"""


def test_the_engine_runs_with_the_measured_settings() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    probe = json.loads(done.stdout)
    # One core allowed: one thread per model, its buffers reused, no spinning on the core.
    expected = {"threads": 1, "arena": True, "spinning": "0"}
    assert probe["sessions"] == [expected] * 3
    # Short text boxes are recognised at their own width, not padded to 320 px.
    assert probe["rec_shape"] == [3, 48, 48]


def test_short_and_long_boxes_read_in_one_image() -> None:
    # A batch mixes short boxes with a long line: without the 320 px floor the short ones
    # set no width of their own, and both must still read right.
    image = Image.new("RGB", (900, 260), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=36)
    draw.text((20, 20), "RM", fill="black", font=font)
    draw.text((20, 90), "TOTAL AMOUNT INCLUDING GST 60.31", fill="black", font=font)
    draw.text((20, 170), "7.40", fill="black", font=font)
    text = ocr_page(image).text.replace(" ", "")
    assert "RM" in text
    assert "TOTALAMOUNTINCLUDINGGST60.31" in text
    assert "7.40" in text
