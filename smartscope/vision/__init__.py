"""smartscope.vision: find nuclei in a raw frame and cut the classifier's crops (numpy + skimage).

``find_nuclei`` -> ``Nuclei`` (centroids, areas, intensities); ``extract_crops`` cuts raw crops at
a fixed physical scale and ``prepare_crops`` applies the ONE normalisation (``preprocess``).
"""

from smartscope.vision.crops import background_level, extract_crops, prepare_crops
from smartscope.vision.detect import DEFAULT_DIAMETER_UM, Nuclei, check_frame, find_nuclei
from smartscope.vision.preprocess import (
    CROP_UM,
    INPUT_SIZE,
    NORMALISATION,
    normalise,
    resize_to_input,
)

__all__ = [
    "CROP_UM",
    "DEFAULT_DIAMETER_UM",
    "INPUT_SIZE",
    "NORMALISATION",
    "Nuclei",
    "background_level",
    "check_frame",
    "extract_crops",
    "find_nuclei",
    "normalise",
    "prepare_crops",
    "resize_to_input",
]
