"""Media in and out: files and streams, through PyAV (and ffmpeg-python).

- :mod:`.decode`: open inputs, probe them, decode SDR frames to RGB.
- :mod:`.encode`: 10-bit PQ/HLG writers with HDR signalling (HEVC, AV1, ProRes, FFV1).
- :mod:`.encode_ffmpeg`: the same planes piped to a system ``ffmpeg``.
- :mod:`.hdrio`: HDR images (EXR, Radiance, TIFF) and PQ/HLG video frames read as linear light.
- :mod:`.info`: what ``hdrvideo info`` prints about a file.

Imports only :mod:`hdrvideo.colour` from hdrvideo.
"""
