"""Faults the simulated DUT can inject, for the harness's own tests of its error handling.

A plan is a comma-separated list `name[=value]` (e.g. `flip_chunk=3,log_noise`), given to the sim
process with `--faults`. Counters are 1-based and count from the sim's boot; a fault with a request
kind as its value fires on the first request of that kind (or on every one, for the `_always` forms).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from host.errors import HarnessError


@dataclass
class FaultPlan:
    flip_chunk: int = 0  # flip one byte of the Nth upload chunk frame received (CRC error -> NAK -> resend)
    drop_chunk: int = 0  # lose the Nth upload chunk frame (a gap -> NAK -> resend)
    flip_record: int = 0  # flip one byte of the Nth record line sent (bad CRC on the host -> resend request)
    truncate_record: int = 0  # cut the Nth record line in half (host sees a bad record -> resend request)
    garble_request: int = 0  # treat the Nth request line as unreadable (error bad_crc -> host resends)
    reboot: str = ""  # reboot once when the first request of this kind arrives (host repeats it once)
    reboot_always: str = ""  # reboot on every request of this kind (host gives up after one repeat)
    panic: str = ""  # print a Guru Meditation panic with a backtrace on this request kind, then reboot
    hang: str = ""  # stop answering anything once this request kind arrives
    log_noise: bool = False  # interleave log lines (and unterminated log text) with every record
    wrong_model_sha: bool = False  # report a model sha256 that is not the flashed one
    slow_link: int = 0  # throttle the device's output to this many bytes per second
    perturb_boxes: bool = False  # move the first reported box one pixel right (a postprocess bug)
    preprocess_offset: bool = False  # sample the image one column off (a preprocess bug)
    corrupt_output: str = ""  # add 1 to one int8 element of this model output (a kernel bug)
    selftest_fail: bool = False  # Model::test() reports failure
    slowdown: str = ""  # "stage:factor" (e.g. model:1.05): that stage's modelled latency is multiplied

    @classmethod
    def parse(cls, text: str | None) -> "FaultPlan":
        plan = cls()
        known = {f.name: f for f in fields(cls)}
        for item in filter(None, (part.strip() for part in (text or "").split(","))):
            name, _, value = item.partition("=")
            if name not in known:
                raise HarnessError(f"unknown sim fault {name!r}; known: {', '.join(known)}")
            kind = type(getattr(plan, name))
            try:
                setattr(plan, name, True if kind is bool else kind(value))
            except ValueError:
                raise HarnessError(f"sim fault {name} needs a {kind.__name__} value, got {value!r}") from None
            if kind is not bool and not value:
                raise HarnessError(f"sim fault {name} needs a value: {name}=...")
        return plan

    def stage_slowdown(self) -> dict[str, float]:
        if not self.slowdown:
            return {}
        stage, _, factor = self.slowdown.partition(":")
        if stage not in ("pre", "model", "post"):
            raise HarnessError(f"sim fault slowdown={self.slowdown}: the stage must be pre, model or post")
        try:
            return {stage: float(factor)}
        except ValueError:
            raise HarnessError(f"sim fault slowdown={self.slowdown}: the factor must be a number, e.g. model:1.05") from None

    def describe(self) -> str:
        active = [f"{f.name}={getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name)]
        return ",".join(active) or "none"
