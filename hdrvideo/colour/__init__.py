"""Colour maths, in torch (batched, any device): the standards every other stage builds on.

- :mod:`.transfer`: BT.709 / sRGB / BT.1886, SMPTE ST 2084 (PQ), BT.2100 HLG, BT.709 ↔ BT.2020
  primaries, luminance; re-exported here, so ``hdrvideo.colour.pq_eotf`` works.
- :mod:`.ycbcr`: R'G'B' ↔ Y'CbCr (BT.601 / 709 / 2020), quantisation, 4:2:0 chroma.
- :mod:`.ictcp`: BT.2100 ICtCp and the BT.2124 colour difference ΔE_ITP.
- :mod:`.pu21`: the PU21 perceptual encoding of HDR light and its PSNR / SSIM.

Imports nothing else from hdrvideo.
"""

from .transfer import *  # noqa: F403 - the transfer functions are this package's main API
from .transfer import __all__  # noqa: F401, E402
