"""Your own Pycro-Manager script, made smart by a protocol file.

Runs the closed loop of ``acquisitions/mitosis_zoom.yaml`` with a plain ``pycromanager.Acquisition``
on the simulated microscope. On a real microscope, replace the ``smartscope.sim.start(...)`` block
with the Micro-Manager core you already use (``core = pycromanager.Core()``), keeping the rest.

    python examples/hook_from_protocol.py --out runs/example_protocol
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pycromanager import Acquisition

from smartscope.acquire import SmartHook
from smartscope.acquire.connect import sim_config_for
from smartscope.protocol import load_protocol
from smartscope.sim import start

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", type=Path, default=HERE.parent / "acquisitions" /
                        "mitosis_zoom.yaml")
    parser.add_argument("--out", type=Path, default=Path("runs/example_protocol"))
    parser.add_argument("--timepoints", type=int, default=8, help="screening time points")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    protocol = load_protocol(args.protocol)
    # a shorter screening than the file's, to keep the example quick
    screening = protocol.screening.model_copy(update={"n_timepoints": args.timepoints})
    protocol = protocol.model_copy(update={"screening": screening})

    with start(sim_config_for(protocol)) as scope:  # <- your microscope: core = Core()
        hook = SmartHook.from_protocol(protocol, scope.core, out_dir=args.out)
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
