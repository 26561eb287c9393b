"""Segmentation architectures by name: `build_model`, `list_archs`, `get_arch`; importing each family module
registers its archs."""
from segx.models import rcnn, smp_archs, smp_extra, torchvision_archs  # noqa: F401  (registration)
from segx.models.base import SegModel
from segx.models.registry import ArchSpec, build_model, get_arch, list_archs, register

__all__ = ["ArchSpec", "SegModel", "build_model", "get_arch", "list_archs", "register"]
