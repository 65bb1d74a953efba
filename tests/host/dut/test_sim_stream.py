"""Queued detects on the simulated DUT (protocol 2): answers in order, two images held at most, a dataset run
through the streaming path equal to the one-at-a-time path; the sim's link and device-time model."""

from __future__ import annotations

import time

import numpy as np
import pytest

from host.dut.client import DutReportedError
from host.errors import HarnessError
from host.protocol import messages as m


def _images(n: int, seed: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.random((40 + 9 * k, 120 - 7 * k, 3)) * 255).astype(np.uint8) for k in range(n)]


def test_sim_answers_queued_detects_in_order_and_refuses_a_third_image(open_tiny_sim):
    # usj: the modelled chip time is taken; slowdown: about a second per image, so two images are held for sure
    dut = open_tiny_sim(faults="slowdown=model:1000", link="usj", timeout_s=30.0)
    info = dut.info()
    assert info.proto == 2 and info.queue == 2 and dut.stream_path == "stream"
    images = _images(3)
    client = dut.client
    ids = [client.submit_detect(img.shape[1], img.shape[0], img.tobytes()) for img in images[:2]]
    with pytest.raises(DutReportedError) as refused:  # one computing, one waiting: a third upload is refused
        client.submit_detect(images[2].shape[1], images[2].shape[0], images[2].tobytes())
    assert refused.value.code == m.E_BUSY
    first = client.collect(ids[0])
    assert first.body["id"] == ids[0] and client.queued == 1
    third = client.submit_detect(images[2].shape[1], images[2].shape[0], images[2].tobytes())  # a buffer is free
    replies = [first, client.collect(ids[1]), client.collect(third)]
    assert [r.body["w"] for r in replies] == [img.shape[1] for img in images]
    plain = [dut.detect(img) for img in images]
    assert [m.parse_detect(r.body).boxes for r in replies] == [p.boxes for p in plain]


def test_detect_stream_on_the_sim_equals_detect(open_tiny_sim):
    dut = open_tiny_sim()
    images = _images(5, seed=11)
    streamed = list(dut.detect_stream(images))
    assert [r.boxes for r in streamed] == [dut.detect(img).boxes for img in images]
    assert dut.client.queued == 0


def test_dataset_run_streams_and_gives_the_one_at_a_time_results(tiny_model, open_tiny_sim, tmp_path):
    from host.dataset import GroundTruth, Item, LabelledSet
    from host.reference.reference import reference
    from host.report.results import ResultsWriter
    from host.runs.dataset import RECORD, RunSetup, run_dataset
    from tests.host.builders import write_images

    folder = write_images(tmp_path / "set", 6, seed=5)
    (folder / "broken.png").write_bytes(b"not a png")
    items = [Item(p, (GroundTruth(0, 1.0, 1.0, 20.0, 20.0),)) for p in sorted(folder.glob("*.png"))]
    dataset = LabelledSet(folder, "yolo", items)
    dut = open_tiny_sim()
    setup = RunSetup(tiny_model.sha256, "sim", "esp32p4", m.DEFAULT_THRESHOLDS)

    def ref(rgb):
        return reference(rgb, tiny_model, "esp32p4")

    runs, journals = {}, {}
    for path, streaming in (("stream", True), ("one-at-a-time", False)):
        dut.streaming = streaming
        writer = ResultsWriter(tmp_path / path, {"test": path})
        runs[path] = run = run_dataset(dataset, dut, setup, ref, writer)
        assert run.detect_path == path
        journals[path] = {r["test"]: r for r in writer.records if r["kind"] == RECORD}
        assert [p.image for p in run.problems] == ["broken.png"]
    keep = ("equal", "stage", "device_boxes", "reference_boxes")
    stream, single = journals["stream"], journals["one-at-a-time"]
    assert sorted(stream) == sorted(single) and len(stream) == 6
    assert {n: {k: r[k] for k in keep} for n, r in stream.items()} == {n: {k: r[k] for k in keep}
                                                                      for n, r in single.items()}
    assert runs["stream"].device.map50_95 == runs["one-at-a-time"].device.map50_95


def test_sim_link_paces_the_upload_and_takes_the_modelled_time(open_tiny_sim, tiny_pack):
    from host.dut.sim.launcher import start_sim

    image = _images(1)[0]
    seconds = {}
    for link in ("none", "uart2m"):
        dut = open_tiny_sim(link=link, timeout_s=30.0)
        dut.detect(image)  # warm
        start = time.monotonic()
        result = dut.detect(image)
        seconds[link] = time.monotonic() - start
        modelled = sum(result.stage_us.values()) / 1e6
    # uart2m: the image crosses at 200 kB/s (plus framing), then the modelled chip time is waited
    assert seconds["uart2m"] >= image.nbytes / 200_000 + modelled
    assert seconds["none"] < seconds["uart2m"]
    sim = start_sim(tiny_pack, "esp32p4", link="usj")
    try:
        assert "link=usj" in sim.banner
    finally:
        sim.stop()
    with pytest.raises(HarnessError, match="uart2m"):
        start_sim(tiny_pack, "esp32p4", link="usb3")


def test_link_models_carry_bytes_at_their_rates():
    from host.dut.sim.link import LINKS, PacedInput, link_model

    assert (LINKS["uart2m"].bytes_per_s, LINKS["usj"].bytes_per_s) == (200_000, 1_000_000)
    assert not LINKS["none"].compute_wait and LINKS["uart2m"].compute_wait and LINKS["usj"].compute_wait
    paced = PacedInput(link_model("uart2m"))
    paced.receive(b"x" * 100_000, now=10.0)  # 0.5 s of line time at 2 Mbaud 8N1
    paced.receive(b"y" * 100_000, now=10.1)  # queues behind the first
    early = paced.due(10.2)
    assert 35_000 <= len(early) <= 41_000  # 0.2 s at 200 kB/s, less the 1 ms latency
    first = early + paced.due(10.5 + 0.0011)
    assert first == b"x" * 100_000  # all of the first block, none of the second yet
    assert paced.due(11.0 + 0.0011) == b"y" * 100_000 and paced.next_due() is None
    free = PacedInput(link_model("none"))
    free.receive(b"z" * 100_000, now=5.0)
    assert len(free.due(5.0)) == 100_000
    with pytest.raises(HarnessError, match="none, uart2m, usj"):
        link_model("usb3")


def test_sim_reset_is_a_power_cycle_the_same_dut_object_survives(tiny_pack, test_rgb):
    from host.dut.backend import Artifact, DutOptions
    from host.dut.sim.backend import SimBackend

    backend = SimBackend(DutOptions(target="esp32p4", timeout_s=10.0))
    backend.prepare(Artifact(tiny_pack, None, ""))
    dut = backend.open()
    try:
        before, old_client = dut.detect(test_rgb), dut.client
        boot = backend.reset(dut)
        assert boot is dut.boot and boot  # the new process's boot record
        assert dut.client is not old_client and dut.port.startswith("/dev/")  # a new process (the pty number may repeat)
        assert [b.box for b in dut.detect(test_rgb).boxes] == [b.box for b in before.boxes]
    finally:
        dut.close()
