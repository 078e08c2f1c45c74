"""The model card: the JSON file that travels with a ``.tflite`` model and describes it.

A model bundle is a folder holding ``model.tflite`` and ``model_card.json`` (this schema). Training
writes it; ``smartscope.classify`` reads it and checks it against the model before use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from smartscope.classify.thresholds import ThresholdTable
from smartscope.errors import ModelBundleError
from smartscope.frozen import FrozenModel
from smartscope.outputs import atomic_file

CARD_FILE = "model_card.json"
MODEL_FILE = "model.tflite"
CARD_VERSION = 1


class InputSpec(FrozenModel):
    size_px: int = Field(64, ge=8, le=1024, description="side of the square model input, px")
    channels: int = Field(1, ge=1, le=4)
    crop_um: float = Field(gt=0, le=1000,
                           description="physical side of a crop before resampling, um")
    normalisation: str = Field(description="name of the preprocessing (vision.preprocess)")
    value_range: tuple[float, float] = (-1.0, 1.0)


class Quantisation(FrozenModel):
    input_dtype: str = "int8"
    input_scale: float | None = None
    input_zero_point: int | None = None
    output_dtype: str = "int8"
    output_scale: float | None = None
    output_zero_point: int | None = None


class Calibration(FrozenModel):
    """Softmax temperature fitted on validation crops (already folded into the model's logits)."""

    temperature: float = Field(gt=0, description="logits were divided by this before export")
    fitted_on: str = Field(description="which crops, e.g. 'validation (n=245)'")
    nll_before: float
    nll_after: float
    ece_before: float = Field(description="expected calibration error, 10 bins, before")
    ece_after: float


class ModelCard(FrozenModel):
    """Describes a model bundle. Unknown fields are refused, so a typo is an error."""

    card_version: int = CARD_VERSION
    name: str
    classes: tuple[str, ...] = Field(min_length=2, description="class names, in output order")

    @field_validator("card_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != CARD_VERSION:
            raise ValueError(f"card_version {v} is not one this smartscope reads ({CARD_VERSION}); "
                             "use a bundle exported for it, or update smartscope")
        return v

    @field_validator("classes")
    @classmethod
    def _named_once(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        empty = [i for i, c in enumerate(v) if not c.strip()]
        if empty:
            raise ValueError(f"class {empty[0]} has an empty name; name every class")
        seen = {c for c in v if v.count(c) > 1}
        if seen:
            raise ValueError(f"class {sorted(seen)[0]!r} is named twice; each output needs its "
                             "own class name")
        return v
    input: InputSpec
    quantisation: Quantisation = Quantisation()
    created: str | None = Field(None, description="ISO 8601 time of export")
    method: str = Field("sgan", description="sgan, supervised-only, or transfer")
    seed: int | None = None
    training: dict[str, Any] = Field(
        default_factory=dict,
        description="data summary: label counts per class, unlabelled count, split, data hashes",
    )
    scores: dict[str, Any] = Field(
        default_factory=dict, description="test / validation metrics, baselines"
    )
    notes: list[str] = Field(default_factory=list, description="limitations, in plain words")
    calibration: Calibration | None = Field(None, description="temperature scaling, if fitted")
    thresholds: ThresholdTable | None = Field(
        None, description="per-class precision/recall at confidence thresholds (int8 model)")
    refit: dict[str, Any] | None = Field(
        None, description="a refit on all labels (`smartscope refit`): the held-out run it "
        "repeats, epochs, label counts; its calibration and thresholds come from that run")

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def save(self, folder: Path) -> Path:
        path = Path(folder) / CARD_FILE
        with atomic_file(path) as tmp:
            tmp.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        """Read a card file (or the card inside a bundle folder).

        Raises
        ------
        ModelBundleError
            If the file is missing, not JSON, or does not follow the schema.
        """
        path = Path(path)
        if path.is_dir():
            path = path / CARD_FILE
        if not path.is_file():
            raise ModelBundleError(
                f"{path}: model card not found; a bundle folder must hold {MODEL_FILE} "
                f"and {CARD_FILE}"
            )
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ModelBundleError(f"{path}: not valid JSON ({e}); re-export the bundle") from e
        except RecursionError as e:
            raise ModelBundleError(f"{path}: nested too deeply to be a model card; re-export "
                                   "the bundle") from e
        try:
            return cls.model_validate(data)
        except RecursionError as e:
            raise ModelBundleError(f"{path}: nested too deeply to be a model card; re-export "
                                   "the bundle") from e
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            value = "" if err["type"] == "value_error" else f" (value {err.get('input')!r})"
            raise ModelBundleError(f"{path}: field '{loc}': {msg}{value}; fix the card or "
                                   "re-export the bundle") from e
