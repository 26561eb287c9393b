"""VOC data: constants, the dataset and transforms, splits, the synthetic set, tree checks, download and SBD."""
from segx.data.constants import CLASSES, IGNORE_INDEX, MEAN, NUM_CLASSES, PALETTE, STD
from segx.data.layout import resolve_voc_root
from segx.data.splits import list_ids, split_pair
from segx.data.synth import make_synthetic_voc
from segx.data.transforms import eval_transforms, train_transforms
from segx.data.voc import VOCSegmentation, read_image, read_mask, write_mask

__all__ = ["CLASSES", "IGNORE_INDEX", "MEAN", "NUM_CLASSES", "PALETTE", "STD", "VOCSegmentation", "eval_transforms",
           "list_ids", "make_synthetic_voc", "read_image", "read_mask", "resolve_voc_root", "split_pair",
           "train_transforms", "write_mask"]
