"""Accuracy of detections on a labelled set (COCO mAP through pycocotools), and the gates built on it."""
