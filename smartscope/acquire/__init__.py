"""The acquisition side: the only package that imports pycromanager.

- ``connect(protocol, simulate)``: the simulator, the Micro-Manager app (bridge) or headless.
- ``SmartHook``: pycromanager's ``image_process_fn``; build it ``from_protocol`` or
  ``from_objects`` for your own pycromanager script.
- ``Run``: a whole run from a protocol (what ``smartscope run`` does).
"""

from smartscope.acquire.connect import ScopeHandle, bridge_unreachable_message, connect
from smartscope.acquire.hook import Progress, SmartHook
from smartscope.acquire.run import Run, RunSummary, output_dir

__all__ = [
    "Progress", "Run", "RunSummary", "ScopeHandle", "SmartHook", "bridge_unreachable_message",
    "connect", "output_dir",
]
