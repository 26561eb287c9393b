"""segx: PASCAL VOC semantic segmentation from training to edge deployment."""

__version__ = "0.1.0"
