"""Your own multi-dimensional Pycro-Manager acquisition, every nucleus classified as it comes.

``SmartHook`` decides only on the events it queues itself. When you keep your own events
(``multi_d_acquisition_events`` over positions, channels and z), classify in your own
``image_process_fn`` with ``classify_frame``: here the nuclear channel (FITC) at the middle
z-plane of every position and time point is classified, the other images are only saved, and
every nucleus goes into a CSV with its position, time point and stage coordinates. A failure
of the classification is logged and never costs an image: the function always hands the image
back to pycromanager to be saved. On a real microscope, replace the ``smartscope.sim.start(...)``
block with the Micro-Manager core you already use (``core = pycromanager.Core()``).

    python examples/classify_own_acquisition.py --out runs/example_own_acquisition
"""

from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path
from typing import Any

from pycromanager import Acquisition, multi_d_acquisition_events

from smartscope.classify import Classifier, classify_frame
from smartscope.sim import SimConfig, start

HERE = Path(__file__).resolve().parent
log = logging.getLogger("classify_own_acquisition")

NUCLEAR_CHANNEL = "FITC"
Z_STEPS_UM = (-2.0, 0.0, 2.0)
CLASSIFIED_Z_INDEX = 1  # the middle plane (z = 0 um: in focus)


class ClassifyNuclei:
    """``image_process_fn(image, metadata)``: classify the nuclear channel's in-focus plane."""

    def __init__(self, classifier: Classifier, writer: Any, diameter_um: float = 18.0) -> None:
        self.classifier = classifier
        self.writer = writer
        self.diameter_um = diameter_um
        self.classified = 0
        self.failed = 0

    def __call__(self, image: Any, metadata: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        axes = metadata.get("Axes", {})
        if axes.get("channel") == NUCLEAR_CHANNEL and axes.get("z") == CLASSIFIED_Z_INDEX:
            try:
                self._classify(image, metadata, axes)
            except Exception:  # never lose the image over the analysis
                self.failed += 1
                log.exception("could not classify the image at %s", axes)
        return image, metadata

    def _classify(self, image: Any, metadata: dict[str, Any], axes: dict[str, Any]) -> None:
        # pycromanager's Python backend writes PixelSize_um, its Java one PixelSizeUm
        pixel_size_um = float(metadata.get("PixelSize_um") or metadata.get("PixelSizeUm") or 0)
        if pixel_size_um <= 0:
            raise ValueError("the image has no pixel size: calibrate the objective in "
                             "Micro-Manager (Devices > Pixel Size Calibration)")
        result = classify_frame(image, pixel_size_um, self.classifier,
                                diameter_um=self.diameter_um)
        h, w = image.shape[-2:]
        stage_x, stage_y = (float(metadata.get(f"{a}Position_um_Intended",
                                               metadata.get(f"{a}PositionUm", 0.0)))
                            for a in "XY")
        for cell in result.cells:
            # camera not flipped or rotated here; see docs/protocol.md for the general mapping
            self.writer.writerow({
                "time": axes.get("time", 0), "position": axes.get("position", 0),
                "y_px": round(cell.y, 1), "x_px": round(cell.x, 1),
                "x_um": round(stage_x + (cell.x - (w - 1) / 2) * pixel_size_um, 2),
                "y_um": round(stage_y + (cell.y - (h - 1) / 2) * pixel_size_um, 2),
                "area_um2": round(cell.area_um2, 1), "phase": cell.phase,
                "confidence": round(cell.confidence, 3)})
        self.classified += 1
        log.info("time %s position %s: %d nuclei", axes.get("time"), axes.get("position"),
                 len(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=HERE.parent / "models" / "hela_h2b_5class")
    parser.add_argument("--out", type=Path, default=Path("runs/example_own_acquisition"))
    parser.add_argument("--timepoints", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    classifier = Classifier(args.model, num_threads=1)
    events = multi_d_acquisition_events(
        num_time_points=args.timepoints, time_interval_s=1.0,
        xy_positions=[[0.0, 0.0], [400.0, -300.0]],
        channel_group="Channel", channels=[NUCLEAR_CHANNEL, "Brightfield"],
        channel_exposures_ms=[20.0, 5.0],
        z_start=Z_STEPS_UM[0], z_end=Z_STEPS_UM[-1], z_step=Z_STEPS_UM[1] - Z_STEPS_UM[0],
        order="tpcz")
    args.out.mkdir(parents=True, exist_ok=True)
    config = SimConfig(seed=5, time_scale=60, start_objective="20x", sensor_px=512)
    # start(...) registers its core with pycromanager; on a microscope: core = Core()
    with start(config), open(args.out / "nuclei.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["time", "position", "y_px", "x_px", "x_um",
                                                "y_um", "area_um2", "phase", "confidence"])
        writer.writeheader()
        process = ClassifyNuclei(classifier, writer)
        acq = Acquisition(directory=str(args.out), name="acquisition", image_process_fn=process)
        acq.acquire(events)
        acq.mark_finished()  # your own events: tell pycromanager there are no more
        acq.await_completion()
    print(f"{len(events)} images saved, {process.classified} classified "
          f"({process.failed} failed); nuclei in {args.out / 'nuclei.csv'}")


if __name__ == "__main__":
    main()
