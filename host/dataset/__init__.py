"""Labelled image sets for accuracy runs: YOLO-format label files or a COCO JSON, read into one shape.

Bad input never stops a run: an image without a label file, a malformed label line, a class id beyond
the model's classes are each recorded as a `Problem` naming the file, and the run goes on without them.
"""

from host.dataset.labels import GroundTruth, Item, LabelledSet, Problem, load_dataset

__all__ = ["GroundTruth", "Item", "LabelledSet", "Problem", "load_dataset"]
