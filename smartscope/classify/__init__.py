"""smartscope.classify: run an int8 TFLite model bundle with LiteRT (no TensorFlow).

``Classifier`` loads a bundle (``model.tflite`` + ``model_card.json``), checks that the card and
the model agree and predicts class probabilities for a batch of normalised crops;
``classify_frame`` runs detection, crops and one batched prediction on a raw frame.
"""

from smartscope.classify.card import CARD_FILE, MODEL_FILE, InputSpec, ModelCard, Quantisation
from smartscope.classify.cells import Cell, FrameClassifier
from smartscope.classify.frame import FrameResult, classify_frame
from smartscope.classify.runtime import (
    Classifier,
    default_threads,
    interpreter_class,
    load_classifier,
)

__all__ = [
    "CARD_FILE",
    "Cell",
    "FrameClassifier",
    "FrameResult",
    "MODEL_FILE",
    "Classifier",
    "InputSpec",
    "ModelCard",
    "Quantisation",
    "classify_frame",
    "default_threads",
    "interpreter_class",
    "load_classifier",
]
