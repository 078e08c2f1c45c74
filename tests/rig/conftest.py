"""Micro-Manager's own demo devices (DemoCamera adapter + MMConfig_demo.cfg).

Build them with ``../shared/rigs/micromanager-demo/build.sh build/mm-demo`` (``.ci/run`` does),
or point ``SMARTSCOPE_MM_DEMO`` at a folder holding ``libmmgr_dal_DemoCamera`` and
``MMConfig_demo.cfg`` (``mmcore build-dev`` from pymmcore-plus, or a Micro-Manager installation).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOW = ("Micro-Manager's demo adapters are not built: run ../shared/rigs/micromanager-demo/build.sh "
       "build/mm-demo, or set SMARTSCOPE_MM_DEMO to a folder with libmmgr_dal_DemoCamera and "
       "MMConfig_demo.cfg (`mmcore build-dev` from pymmcore-plus, or a Micro-Manager installation)")


def demo_dir() -> Path | None:
    """The folder with the demo adapter and configuration, or None."""
    env = os.environ.get("SMARTSCOPE_MM_DEMO")
    folder = Path(env) if env else REPO / "build" / "mm-demo"
    if (folder / "MMConfig_demo.cfg").is_file() and any(folder.glob("libmmgr_dal_DemoCamera*")):
        return folder.resolve()
    return None


@pytest.fixture(scope="session")
def mm_demo() -> Path:
    folder = demo_dir()
    if folder is None:
        pytest.skip(HOW)
    return folder


def loaded_demo_core(mm_demo: Path) -> Iterator:
    """A real MMCore with the demo configuration loaded; its devices unloaded afterwards."""
    import pymmcore

    core = pymmcore.CMMCore()
    core.setDeviceAdapterSearchPaths([str(mm_demo)])
    core.loadSystemConfiguration(str(mm_demo / "MMConfig_demo.cfg"))
    yield core
    core.unloadAllDevices()


@pytest.fixture(scope="module")
def demo_core(mm_demo):
    """A real MMCore with the demo configuration loaded (the demo camera), shared by a module."""
    yield from loaded_demo_core(mm_demo)


@pytest.fixture
def own_demo_core(mm_demo):
    """The same, for one test that changes the core's settings."""
    yield from loaded_demo_core(mm_demo)
