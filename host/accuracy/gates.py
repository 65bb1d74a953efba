"""The accuracy gates of a dataset run, each with its figures: device == reference, drop from float, baseline.

- `device_equals_reference`: on a bit-exact DUT every image's boxes equal the reference's, hence equal mAP;
  any difference lists the images with the stage that diverged first.
- `max_map_drop`: the device's mAP50-95 is at most `max_drop` below the float model's.
- `baseline`: the device's mAP50-95 is not below a stored baseline of the same setup by more than its
  tolerance (baselines are created and updated on purpose: `python -m host accuracy create|update`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GateVerdict:
    name: str
    status: str  # "pass", "fail" or "skipped"
    message: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.status, "message": self.message, **self.figures}


def device_equals_reference(run, exact: bool) -> GateVerdict:
    figures = {"device_map50_95": run.device.map50_95, "reference_map50_95": run.reference.map50_95,
               "differing_images": run.differing}
    if not exact:
        return GateVerdict("device_equals_reference", "skipped", "box tolerances are set (not a bit-exact "
                           "comparison): device and reference mAP are reported side by side", figures)
    if run.differing:
        names = ", ".join(f"{d['image']} ({d.get('stage', '?')})" for d in run.differing[:10])
        return GateVerdict("device_equals_reference", "fail", f"{len(run.differing)} image(s) differ from the "
                           f"reference: {names}", figures)
    if (run.device.map50_95, run.device.map50) != (run.reference.map50_95, run.reference.map50):
        return GateVerdict("device_equals_reference", "fail", "every image agrees but the mAPs differ: "
                           "a harness bug, report it", figures)
    return GateVerdict("device_equals_reference", "pass", f"all {run.images} images agree with the reference "
                       f"(mAP50-95 {run.device.map50_95})", figures)


def max_map_drop(run, max_drop: float | None) -> GateVerdict:
    if run.float is None:
        return GateVerdict("max_map_drop", "skipped", "no float model for this artifact (a prequantized .espdl): "
                           "the drop from float cannot be measured")
    drop = round(run.float.map50_95 - run.device.map50_95, 4)
    figures = {"float_map50_95": run.float.map50_95, "device_map50_95": run.device.map50_95, "drop": drop,
               "max_drop": max_drop}
    if max_drop is None:
        return GateVerdict("max_map_drop", "skipped", f"drop from float {drop} (no --max-map-drop given)", figures)
    status = "pass" if drop <= max_drop else "fail"
    return GateVerdict("max_map_drop", status, f"mAP50-95 drop from float {drop} "
                       f"{'<=' if status == 'pass' else '>'} {max_drop}", figures)


def against_baseline(run, stored: dict[str, Any] | None, tolerance: float) -> GateVerdict:
    if stored is None:
        return GateVerdict("baseline", "skipped", "no stored accuracy baseline for this setup; create one with "
                           "`python -m host accuracy create reports/accuracy.json`")
    base = float(stored["device"]["map50_95"])
    figures = {"baseline_map50_95": base, "device_map50_95": run.device.map50_95, "tolerance": tolerance}
    status = "pass" if run.device.map50_95 >= base - tolerance else "fail"
    return GateVerdict("baseline", status, f"mAP50-95 {run.device.map50_95} vs baseline {base} "
                       f"(tolerance {tolerance})", figures)
