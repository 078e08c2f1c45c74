"""The acquisition path never imports TensorFlow (a microscope PC installs LiteRT only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_SCRIPT = """
import sys
import smartscope.cli  # registers every command, as `smartscope run` does
from smartscope.acquire import Run, SmartHook, connect
from smartscope.acquire.connect import sim_config_for
from smartscope.classify import Classifier, classify_frame
from smartscope.protocol import load_protocol
from smartscope.sim import start

proto = load_protocol(sys.argv[1])
classifier = Classifier(proto.model.bundle)
with start(sim_config_for(proto)) as scope:
    scope.core.snapImage()
    image = scope.core.getImage()
    hook = SmartHook.from_protocol(proto, scope.core, classifier=classifier)
    result = classify_frame(image, scope.core.getPixelSizeUm(), classifier, 12.0)
    hook.close()
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
assert not loaded, loaded[:5]
print("ok", len(result))
"""


def test_acquisition_path_has_no_tensorflow():
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(REPO / "acquisitions" / "mitosis_zoom.yaml")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok ")
