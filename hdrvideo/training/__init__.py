"""Training and evaluation of expansion models (``hdrvideo train``, ``hdrvideo eval``).

- :mod:`.data`: HDR images and clips decoded once into a bank of frames on the device.
- :mod:`.grading`: SDR renderings of HDR as SDR grades are made (BT.2446 A/C, filmic, gamut …).
- :mod:`.degrade`: the virtual camera that turns HDR crops into realistic SDR inputs.
- :mod:`.train`: the training loop, losses, checkpoints.
- :mod:`.evaluate`: held-out stills through a virtual camera, and the flicker metric.
- :mod:`.graded`: the graded-pair evaluation (graded HDR references, SDR renderings of them).

Imports the pipeline, the model, colour and media; nothing imports it but the command line.
"""
