"""Will this .espdl run, and run right, on a given esp-dl release and chip? Every reason it would not.

Errors are things the device would refuse or compute wrongly (an attribute the release ignores, an
operator or quant type it lacks, a broken exponent invariant, a model too big for the firmware's
model partition, encryption without a key). Warnings are things the host cannot vouch for (no
embedded test values, an operator the emulator does not model). The HIL session runs this before
anything is flashed, and the simulated DUT before it loads a model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from host.chip.releases import FIRMWARE_ESPDL_VERSION, EspdlFeatures, espdl_features
from host.errors import HarnessError

MODEL_PARTITION = "model"
#: Operators esp-dl runs on raw integers without rescaling: every input and output must share one exponent.
#: (Resize and MaxPool are not listed: esp-dl's modules read their own input and output exponents.)
SAME_EXPONENT_OPS = ("Concat", "Split", "Slice", "Transpose", "Reshape", "Flatten", "Add")
#: Quant types each target's esp-dl 3.3 kernels run.
QUANT_TYPES = {"esp32p4": {"S8", "S16"}, "esp32s3": {"S8", "S16"}}


@dataclass(frozen=True)
class Finding:
    level: str  # "error" | "warning"
    code: str
    node: str | None
    message: str

    def to_json(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = f" [{self.node}]" if self.node else ""
        return f"{self.level.upper()} {self.code}{where}: {self.message}"


def check_bytes(data: bytes, target: str = "esp32p4", espdl_version: str | None = None, key: bytes | None = None,
                partition_size: int | None = None) -> list[Finding]:
    """All findings for one .espdl file's bytes (PDL3 packs are checked model by model).

    `partition_size`: the firmware's model partition in bytes (host.firmware.model_partition_size);
    None when unknown, which is said in a warning."""
    from host.espdl.container import detect_format, edl2_header, read_pdl3
    from host.espdl.model import load_bytes

    features = espdl_features(espdl_version)
    findings: list[Finding] = []
    size_limit = partition_size
    fmt = detect_format(data)
    if fmt == "PDL3":
        pack = read_pdl3(data)
        blobs = [(name, pack.get(name)) for name in pack.names()]
    else:
        blobs = [(None, data)]
    if size_limit is None:
        findings.append(Finding("warning", "partition_unknown", None, "the firmware's partition table was not found "
                                "(no firmware/ tree): the model size was not checked against the model partition"))
    if size_limit is not None and len(data) > size_limit:
        findings.append(Finding("error", "too_large", None,
                                f"{len(data)} bytes do not fit the firmware's '{MODEL_PARTITION}' partition "
                                f"({size_limit} bytes): use a smaller input size or enlarge the partition"))
    for name, blob in blobs:
        encrypted, _ = edl2_header(blob)
        if encrypted and key is None:
            findings.append(Finding("error", "encrypted", name, "the model is AES-encrypted and no key was given; "
                                    "pass --key (the firmware needs the same key in its config)"))
            continue
        findings += check_model(load_bytes(blob, key=key), target, features)
    return findings


def check_model(model, target: str, features: EspdlFeatures) -> list[Finding]:
    from host.espdl import ops

    out: list[Finding] = []
    exp = _exponent_lookup(model)
    for node in model.nodes:
        qt = str(node.attributes.get("quant_type", "S8"))
        if qt not in QUANT_TYPES.get(target, set()):
            out.append(Finding("error", "quant_type", node.name,
                               f"quant_type {qt} is not run by esp-dl {features.version} on {target}"))
        if node.op_type == "Attention" and not features.has_attention_op:
            out.append(Finding("error", "unsupported_op", node.name,
                               f"esp-dl {features.version} has no Attention operator: export with attention "
                               "fusion off (the harness pipeline does this for this release)"))
        elif node.op_type not in ops.OPS:
            out.append(Finding("warning", "not_emulated", node.name,
                               f"operator {node.op_type} is not modelled by the host emulator: the host cannot "
                               "verify it before the board runs it"))
        if node.op_type == "MatMul" and node.attributes.get("input1_layout") == "native_kn" \
                and not features.reads_input1_layout:
            out.append(Finding("error", "ignored_layout", node.name,
                               f"input1_layout=native_kn: esp-dl {features.version} ignores it and reads the right "
                               "operand as packed, so this MatMul computes wrong values. Re-export with the "
                               "harness pipeline (packed MatMul), or use an esp-dl that reads the attribute"))
        if node.op_type == "Conv":
            out += _check_conv(model, node, exp)
        if node.op_type in SAME_EXPONENT_OPS:
            names = [n for n in node.inputs if n and n not in model.initializers] + list(node.outputs)
            values = {n: exp(n) for n in names if exp(n) is not None}
            if len(set(values.values())) > 1:
                out.append(Finding("error", "exponent_mismatch", node.name,
                                   f"{node.op_type} needs equal exponents on every input and output, found "
                                   + ", ".join(f"{n}: {e}" for n, e in values.items())))
    if not model.test_inputs or not model.test_outputs:
        out.append(Finding("warning", "no_test_values", None, "no embedded test values: Model::test() and the host "
                           "self-test cannot check this model; export with export_test_values=True"))
    return out


def _exponent_lookup(model):
    def exp(name: str) -> int | None:
        info = model.info(name)
        return int(info.exponents[0]) if info is not None and info.exponents else None
    return exp


def _check_conv(model, node, exp) -> list[Finding]:
    out = []
    weight = model.initializers.get(node.inputs[1]) if len(node.inputs) > 1 else None
    group = int(node.attributes.get("group", 1))
    if weight is not None and group != 1:
        c_in = weight.dims[2] if weight.layout != "plain" else None
        depthwise = len(weight.dims) == 4 and weight.dims[3] == 1
        if not depthwise:
            out.append(Finding("error", "grouped_conv", node.name,
                               f"group={group} convolution: esp-dl runs only group 1 or depthwise "
                               f"(group == input channels{'' if c_in is None else f' = {c_in}'})"))
    if weight is not None and len(node.inputs) > 2 and node.inputs[2]:
        bias = model.initializers.get(node.inputs[2])
        x_exp = exp(node.inputs[0])
        if bias is not None and x_exp is not None and weight.exponents and bias.exponents:
            w_exps = list(weight.exponents)
            b_exps = list(bias.exponents)
            if len(w_exps) == 1:
                w_exps = w_exps * len(b_exps)
            if len(b_exps) == 1:
                b_exps = b_exps * len(w_exps)
            bad = [i for i, (w, b) in enumerate(zip(w_exps, b_exps)) if b != x_exp + w]
            if bad:
                i = bad[0]
                out.append(Finding("error", "bias_exponent", node.name,
                                   f"bias exponent {b_exps[i]} != input {x_exp} + weight {w_exps[i]} "
                                   f"(channel {i}, {len(bad)} channels in all): the bias would be added at the wrong scale"))
    return out


def check_file(path: str | Path, target: str = "esp32p4", espdl_version: str | None = None,
               key: bytes | None = None, partition_size: int | None = None) -> list[Finding]:
    p = Path(path)
    if not p.is_file():
        raise HarnessError(f"{p} does not exist: pass the .espdl or PDL3 file to check")
    return check_bytes(p.read_bytes(), target, espdl_version, key, partition_size)


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "error"]
