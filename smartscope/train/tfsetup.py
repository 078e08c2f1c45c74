"""TensorFlow process set-up for the training commands (quiet logs, CPU thread count)."""

from __future__ import annotations

import os


def setup_tensorflow(threads: int | None = None) -> None:
    """Import TensorFlow with its C++ info logs off; cap its CPU threads when ``threads`` is set.

    Must run before TensorFlow executes any operation (thread pools are fixed at first use).

    Raises
    ------
    SmartscopeError
        If ``threads`` is not 1 to ``MAX_THREADS`` (100000 threads ran for minutes at full CPU
        without training).
    """
    from smartscope.classify.runtime import MAX_THREADS
    from smartscope.errors import SmartscopeError

    if threads is not None and not 1 <= threads <= MAX_THREADS:
        raise SmartscopeError(f"threads (--threads) is {threads}: give 1 to {MAX_THREADS} (this "
                              f"computer has {os.cpu_count()} cores)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
