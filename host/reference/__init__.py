"""The host reference of ESP-DL's yolo11 pipeline: preprocess, PPQ simulation and postprocess, bit-exact."""
