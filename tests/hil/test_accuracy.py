"""Accuracy on a labelled set (--dataset): every image's boxes equal the reference's on a bit-exact DUT.

Each DUT of the session runs a share of the set (one share without pytest-xdist; one per worker with
`-n`): this test journals every image and checks its share. The figures and gates of the whole set -
device and reference mAP, the drop from the float model (--max-map-drop), the stored baseline - are
computed once at the end of the session from every journal (host.runs.finish) and written to
accuracy.json; a failing gate fails the run there, with its figures.
"""

from __future__ import annotations

import pytest

from host.dataset import load_dataset
from host.hil.finish import terminal_progress
from host.hil.state import dataset_setup
from host.runs.dataset import earlier_results, run_dataset

pytestmark = [pytest.mark.hil, pytest.mark.target("esp32p4", "esp32s3")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "dataset_share" in metafunc.fixturenames:
        workerinput = getattr(metafunc.config, "workerinput", None)
        shares = int(workerinput.get("workercount", 1)) if workerinput else 1
        metafunc.parametrize("dataset_share", [pytest.param(k, marks=pytest.mark.xdist_group(f"dataset-share-{k}"))
                                               for k in range(shares)], ids=[f"share{k}of{shares}" for k in range(shares)])


def test_dataset_share_matches_reference(request, dataset_share, hil_state, hil_options, hil_model, hil_dut,
                                         hil_reference_engine, hil_results, hil_tolerance) -> None:
    if hil_options.dataset is None:
        pytest.skip("no --dataset given: the accuracy run needs a labelled set (YOLO label files or a COCO .json)")
    dataset = load_dataset(hil_options.dataset)
    setup = dataset_setup(hil_state, hil_model)
    earlier = earlier_results(hil_results.earlier, setup) if hil_options.resume else {}
    runner_index, runners = hil_options.shard
    workers = hil_state.workers
    share = (runner_index * workers + dataset_share, runners * workers)  # runner's share, then this worker's
    float_detect = None
    if hil_model.onnx_path is not None:
        from host.accuracy.float_model import FloatDetector

        detector = FloatDetector(hil_model.onnx_path, hil_model.imgsz)
        float_detect = lambda rgb: detector.detect(rgb, hil_options.thresholds)  # noqa: E731
    total = len(dataset.items[share[0]::share[1]])
    progress = terminal_progress(request.config, total, f"accuracy on {hil_state.provenance.get('board')}")
    run = run_dataset(dataset, hil_dut, setup, hil_reference_engine, hil_results, hil_tolerance,
                      float_detect=float_detect, resume_from=earlier, progress=progress, shard=share)
    hil_results.add("dataset-share", f"share{dataset_share}", setup=setup.key(), images=run.images,
                    resumed=run.resumed, seconds=round(run.seconds, 2), differing=run.differing,
                    detect_path=run.detect_path,
                    passed=not run.differing)
    if hil_tolerance.exact:
        assert not run.differing, (f"{len(run.differing)} image(s) differ from the reference: "
                                   + "; ".join(f"{d['image']}: {d.get('message', '')}" for d in run.differing[:5]))
