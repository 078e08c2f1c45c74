"""smartscope.label: label a crop pool on a local page, the least certain or rarest crops first.

``load_pool`` reads a pool (``smartscope crops`` output), ``label.order`` decides what comes
first, ``LabelStore`` writes class folders + ``labels.csv``, ``LabelSession`` is a session's state
and ``LabelServer`` serves it on 127.0.0.1 (``smartscope label``).
"""

from smartscope.label.order import appearance_order, uncertainty, uncertainty_order
from smartscope.label.pool import PoolItem, load_pool
from smartscope.label.server import LabelServer
from smartscope.label.session import LabelSession
from smartscope.label.store import JUNK, LabelStore

__all__ = [
    "JUNK",
    "LabelServer",
    "LabelSession",
    "LabelStore",
    "PoolItem",
    "appearance_order",
    "load_pool",
    "uncertainty",
    "uncertainty_order",
]
