"""segx: PASCAL VOC semantic segmentation from training to edge deployment. The Python API: segx.api
(`from segx.api import train, evaluate, export, predict, ...`); `import segx` alone stays light (no torch)."""

__version__ = "0.1.0"
