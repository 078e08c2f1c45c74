"""smartscope.train: SGAN training, transfer learning, int8 export and evaluation.

The only package that imports TensorFlow/Keras (``evaluate`` and ``data`` do not). Python API::

    from smartscope.train.pipeline import TrainRequest, train_run        # smartscope train
    from smartscope.train.transfer import TransferRequest, transfer_run  # smartscope transfer
    from smartscope.train.export import export_run                       # smartscope export
    from smartscope.train.evaluate import evaluate_bundle                # smartscope evaluate

Modules: ``data`` (crop folders, hashes, splits, batch rule), ``augment``, ``models`` (generator,
discriminator, Salimans head), ``sgan`` (training step and loop), ``runs`` (run folder),
``export``, ``reports`` (scores, figures), ``evaluate``, ``pipeline``, ``transfer``.
Nothing is imported here, so ``import smartscope.train`` stays cheap.
"""
