"""smartscope.classify: run an int8 TFLite model bundle with LiteRT (no TensorFlow).

``Classifier`` loads a bundle (``model.tflite`` + ``model_card.json``), checks that the card and
the model agree and predicts class probabilities for a batch of normalised crops.
"""

from smartscope.classify.card import CARD_FILE, MODEL_FILE, InputSpec, ModelCard, Quantisation
from smartscope.classify.runtime import Classifier, interpreter_class, load_classifier

__all__ = [
    "CARD_FILE",
    "MODEL_FILE",
    "Classifier",
    "InputSpec",
    "ModelCard",
    "Quantisation",
    "interpreter_class",
    "load_classifier",
]
