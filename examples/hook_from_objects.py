"""Your own Pycro-Manager script with a smart hook built from Python objects (no protocol file).

Screens one field at 20x in FITC; when an anaphase appears, switches to Brightfield and takes a
burst of frames, then screens on. On a real microscope, replace the ``smartscope.sim.start(...)``
block with the Micro-Manager core you already use (``core = pycromanager.Core()``).

    python examples/hook_from_objects.py --out runs/example_objects
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pycromanager import Acquisition

from smartscope.acquire import SmartHook
from smartscope.classify import Classifier
from smartscope.protocol import Burst, Detection, Screening, SetChannel, Trigger
from smartscope.sim import SimConfig, start

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=HERE.parent / "models" / "hela_h2b_5class")
    parser.add_argument("--out", type=Path, default=Path("runs/example_objects"))
    parser.add_argument("--timepoints", type=int, default=8, help="screening time points")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    screening = Screening(objective="20x", channel="FITC", exposure_ms=20, interval_s=1.5,
                          n_timepoints=args.timepoints)
    division = Trigger(
        name="division_brightfield",
        phase=("metaphase", "anaphase"),
        min_confidence=0.7,
        cooldown_s=5,
        actions=(SetChannel(preset="Brightfield", exposure_ms=5), Burst(n_frames=3)),
    )
    classifier = Classifier(args.model, num_threads=1)

    config = SimConfig(seed=11, time_scale=60, start_objective="20x")
    with start(config) as scope:  # <- your microscope: core = Core()
        hook = SmartHook.from_objects(
            scope.core, screening=screening, triggers=[division], classifier=classifier,
            detection=Detection(diameter_um=18), out_dir=args.out,
        )
        acq = Acquisition(directory=str(args.out), name="screening", image_process_fn=hook)
        # screening images: pycromanager's data set; follow-ups: args.out/followup_<n>/
        hook.set_screening_dataset(acq.get_dataset().path)
        acq.acquire(hook.first_event())
        acq.await_completion()
        hook.close()
    p = hook.progress()
    print(f"{p.frames} frames ({p.followup_frames} follow-up), {p.triggers_fired} trigger(s); "
          f"outputs in {args.out}")


if __name__ == "__main__":
    main()
