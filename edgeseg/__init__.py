"""edgeseg: SegNet semantic segmentation from training to real-time video on the edge.

Importing ``edgeseg`` must stay cheap and must not import torch: the runtime on a Jetson or in an
embedding application installs numpy, OpenCV and one inference engine, nothing more.
"""

__version__ = "0.1.0"

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError

__all__ = ["EdgesegError", "ModelCard", "__version__"]
