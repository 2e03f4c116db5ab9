"""What the command line runs: each module one command, built on the pipeline and media layers.

- :mod:`.options`: the options that ``convert``, ``stream`` and ``batch`` share, declared once.
- :mod:`.convert`: ``hdrvideo convert`` for video (reader, processor and writer threads).
- :mod:`.images`: ``hdrvideo convert`` for stills (image mode).
- :mod:`.stream`: ``hdrvideo stream``: live capture to a file or the network.
- :mod:`.batch`: ``hdrvideo batch``: many files, local workers or Ray.
- :mod:`.bench`: ``hdrvideo bench``: end-to-end and network-only timings.
- :mod:`.preview`: the preview still and the live preview window.
"""
