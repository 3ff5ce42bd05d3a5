"""Running trials on shared workers: budget claims, the worker loop, recovery and local processes.

Nothing here is imported by the layers below it (``store``, ``spec``, ``data``, ``train``);
the API and CLI drive it. Torch is imported only by :mod:`objective` (the trainer bridge), lazily.
"""
