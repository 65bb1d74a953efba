"""`python -m host espdl`: inspect, pack, self-test and run .espdl files with the host emulator.

    espdl info FILE [--json]                 ops, I/O shapes and exponents, sizes, sha256, test values
    espdl pack OUT.bin NAME=FILE ...         write a PDL3 package (the firmware's model partition image)
    espdl selftest FILE [--target T]         run the embedded test inputs, compare exactly; exit 1 on mismatch
    espdl run FILE --image IMG [--json]      ESP-DL preprocess, emulator, ESP-DL postprocess: detections
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from pathlib import Path
from typing import Iterator

from host.errors import HarnessError
from host.chip.detection import DEFAULT_THRESHOLDS
from host.chip.releases import EMULATED_RELEASES, FIRMWARE_ESPDL_VERSION
from host.chip.targets import TARGETS
from host.espdl import container


def _key(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        key = bytes.fromhex(text.replace("0x", "").replace(",", "").replace(" ", ""))
    except ValueError as exc:
        raise HarnessError(f"--key {text!r} is not hex; give the 16-byte key as 32 hex digits") from exc
    if len(key) != 16:
        raise HarnessError(f"--key has {len(key)} bytes; AES-128 needs 16 (32 hex digits)")
    return key


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("file", type=Path, help=".espdl (EDL2) file or PDL3 package")
        p.add_argument("--name", help="model name inside a PDL3 package")
        p.add_argument("--key", help="AES-128 key (32 hex digits) of an encrypted model")

    def engine_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--target", default="esp32p4", choices=TARGETS)
        p.add_argument("--espdl-version", default=FIRMWARE_ESPDL_VERSION, choices=sorted(EMULATED_RELEASES),
                       help="the esp-dl release to emulate (default %(default)s; 'native' honours every attribute)")

    info = sub.add_parser("info", help="describe a .espdl or PDL3 file")
    model_args(info)
    info.add_argument("--json", action="store_true", help="print JSON")

    pack = sub.add_parser("pack", help="write a PDL3 package from EDL2 files")
    pack.add_argument("out", type=Path, help="output file (e.g. models.bin)")
    pack.add_argument("models", nargs="+", metavar="NAME=FILE", help="model name and its .espdl file")
    pack.add_argument("--package-version", default="v1.0", help="PDL3 version string (<= 15 ASCII characters)")

    st = sub.add_parser("selftest", help="run the embedded test inputs in the emulator and compare exactly")
    model_args(st)
    engine_args(st)
    st.add_argument("--json", action="store_true")

    check = sub.add_parser("check", help="every reason the file would not run, or run wrongly, on an esp-dl and chip")
    check.add_argument("file", type=Path, help=".espdl (EDL2) file or PDL3 package")
    check.add_argument("--key", help="AES-128 key (32 hex digits) of an encrypted model")
    check.add_argument("--target", default="esp32p4", choices=TARGETS)
    check.add_argument("--espdl-version", default=None,
                       help="esp-dl release the firmware runs (default: the firmware's pin in host/chip/releases.py)")
    check.add_argument("--firmware-config", default="uart",
                       help="firmware config whose model partition the file must fit (default %(default)s)")
    check.add_argument("--json", action="store_true")

    run = sub.add_parser("run", help="detect objects in an image with the emulator")
    model_args(run)
    engine_args(run)
    run.add_argument("--image", type=Path, required=True, help="PNG or JPEG file")
    run.add_argument("--score-thr", type=float, default=DEFAULT_THRESHOLDS.score_thr)
    run.add_argument("--nms-thr", type=float, default=DEFAULT_THRESHOLDS.nms_thr)
    run.add_argument("--top-k", type=int, default=DEFAULT_THRESHOLDS.top_k)
    run.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    return {"info": _info, "pack": _pack, "selftest": _selftest, "run": _run, "check": _check}[args.action](args)


def _check(args: argparse.Namespace) -> int:
    """Errors exit 1 (warnings alone exit 0); findings are printed errors first."""
    from host.espdl.check import check_bytes, errors
    from host.firmware import model_partition_size

    version = args.espdl_version or FIRMWARE_ESPDL_VERSION
    data, key = _read(args.file), _key(args.key)
    with _about(args.file):
        findings = check_bytes(data, args.target, version, key, model_partition_size(args.target, args.firmware_config))
    findings.sort(key=lambda f: f.level != "error")
    if args.json:
        print(json.dumps({"file": str(args.file), "target": args.target, "espdl_version": version,
                          "errors": len(errors(findings)), "findings": [f.to_json() for f in findings]}))
    else:
        for finding in findings:
            print(finding)
        print(f"{len(errors(findings))} error(s), {len(findings) - len(errors(findings))} warning(s) for esp-dl "
              f"{version} on {args.target}")
    return 1 if errors(findings) else 0


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise HarnessError(f"{path} does not exist; give the path of a .espdl file or PDL3 package")
    return path.read_bytes()


@contextlib.contextmanager
def _about(path: Path) -> Iterator[None]:
    """Name the file in a container or format error raised while reading it (those say what, not which)."""
    try:
        yield
    except HarnessError as exc:
        if str(path) not in str(exc):
            exc.args = (f"{path}: {exc}",)
        raise


def _load(args: argparse.Namespace):
    """The EspdlModel of `args.file` (a PDL3 pack: `--name`), its key checked first."""
    from host.espdl.model import load_bytes

    data, key = _read(args.file), _key(args.key)
    with _about(args.file):
        return load_bytes(data, key=key, name=args.name)


def describe(data: bytes, key: bytes | None = None, name: str | None = None) -> dict:
    """What `espdl info` prints, as data."""
    from host.espdl.model import load_bytes

    fmt = container.detect_format(data)
    out: dict = {"format": fmt, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if fmt == "PDL3" and name is None:
        pack = container.read_pdl3(data)
        out.update(package_version=pack.version, package_sha256=pack.sha256.hex(), models=[])
        for entry in pack.models:
            enc, _ = container.edl2_header(entry.data)
            item = {"name": entry.name, "offset": entry.offset, "size": len(entry.data), "encrypted": enc}
            if not enc or key is not None:
                item.update(_model_facts(load_bytes(entry.data, key=key)))
            out["models"].append(item)
        return out
    out.update(_model_facts(load_bytes(data, key=key, name=name)))
    return out


def _model_facts(model) -> dict:
    def io(vi):
        return {"name": vi.name, "dtype": str(vi.dtype), "shape": list(vi.shape or ()), "exponent": vi.exponent}

    from host.model.identity import identify

    return {
        "model_sha256": model.sha256,
        "identity": identify(model).to_json(),
        "encrypted": model.encrypted,
        "producer": model.producer,
        "metadata": model.metadata,
        "inputs": [io(v) for v in model.inputs],
        "outputs": [io(v) for v in model.outputs],
        "nodes": len(model.nodes),
        "ops": model.op_histogram(),
        "quant_types": sorted({str(n.attributes.get("quant_type", "?")) for n in model.nodes}),
        "matmul_input1_layouts": sorted({str(n.attributes.get("input1_layout", "(none)"))
                                         for n in model.nodes if n.op_type == "MatMul"}),
        "parameter_bytes": model.parameter_bytes(),
        "payload_bytes": model.payload_size,
        "test_values": {"inputs": sorted(model.test_inputs), "outputs": sorted(model.test_outputs)},
    }


def _info(args: argparse.Namespace) -> int:
    data, key = _read(args.file), _key(args.key)
    with _about(args.file):
        facts = describe(data, key, args.name)
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    print(f"{args.file}: {facts['format']}, {facts['size']} bytes, sha256 {facts['sha256']}")
    models = facts.get("models", [facts])
    if "models" in facts:
        print(f"PDL3 package version {facts['package_version']!r}, {len(models)} model(s)")
    for m in models:
        if "name" in m:
            print(f"- {m['name']}: offset {m['offset']}, {m['size']} bytes" + (", encrypted" if m["encrypted"] else ""))
        if "ops" not in m:
            continue
        for kind in ("inputs", "outputs"):
            for vi in m[kind]:
                print(f"  {kind[:-1]:6s} {vi['name']:12s} {vi['dtype']:7s} {vi['shape']}  exp {vi['exponent']}")
        print(f"  {m['nodes']} nodes: " + ", ".join(f"{k} {v}" for k, v in m["ops"].items()))
        print(f"  quant types {m['quant_types']}, parameters {m['parameter_bytes']} bytes")
        ident = m["identity"]
        print(f"  for {ident['target'] or 'an unknown chip'} ({ident['target_source']}), input {ident['imgsz']} "
              f"({ident['imgsz_source']}), preset {ident['preset'] or 'unknown'}")
        if m["matmul_input1_layouts"]:
            print(f"  MatMul input1_layout: {m['matmul_input1_layouts']}")
        tv = m["test_values"]
        print(f"  test values: {'present' if tv['inputs'] and tv['outputs'] else 'absent'}"
              + (f" ({len(tv['inputs'])} in, {len(tv['outputs'])} out)" if tv["inputs"] else ""))
    return 0


def _pack(args: argparse.Namespace) -> int:
    models: dict[str, bytes] = {}
    for item in args.models:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise HarnessError(f"{item!r} is not NAME=FILE; write e.g. yolo11n=model.espdl")
        if name in models:
            raise HarnessError(f"model name {name!r} given twice; names in a PDL3 package must be unique")
        models[name] = _read(Path(path))
        with _about(Path(path)):
            container.edl2_header(models[name])  # a PDL3 pack holds EDL2 models: refuse anything else by name
    data = container.write_pdl3(models, version=args.package_version)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"{args.out}: PDL3, {len(models)} model(s), {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


def _selftest(args: argparse.Namespace) -> int:
    from host.espdl.selftest import selftest

    model = _load(args)
    result = selftest(model, args.target, args.espdl_version)
    if args.json:
        print(json.dumps({"ok": result.ok, "target": args.target, "espdl_version": args.espdl_version,
                          "model_sha256": model.sha256,
                          "outputs": [o.__dict__ | {"ok": o.ok} for o in result.outputs],
                          "notes": result.notes}, indent=2))
    else:
        for o in result.outputs:
            status = "ok" if o.ok else f"MISMATCH ({o.mismatches} values, max |diff| {o.max_abs_diff})"
            print(f"{o.name:12s} {str(list(o.shape)):20s} {status}")
        for node, note in result.notes.items():
            print(f"note: {node}: {note}")
        print(f"selftest {'passed' if result.ok else 'FAILED'} ({args.target}, esp-dl {args.espdl_version})"
              + (f"; {len(result.notes)} note(s) above: what the emulator could not prove" if result.notes else ""))
    return 0 if result.ok else 1


def _run(args: argparse.Namespace) -> int:
    from host.chip.detection import Thresholds
    from host.chip.pipeline import DetectPipeline
    from host.espdl.engine import EmulatorEngine

    model = _load(args)
    engine = EmulatorEngine(model, args.target, args.espdl_version)
    stages = DetectPipeline(engine, args.target).detect(args.image, Thresholds(args.score_thr, args.nms_thr,
                                                                                args.top_k))
    result = {
        "model_sha256": model.sha256, "target": args.target, "espdl_version": args.espdl_version,
        "image": str(args.image), "engine": engine.name,
        "boxes": [b.to_dict() for b in stages.boxes], "candidates": len(stages.post.candidates),
        "notes": engine.notes,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for i, b in enumerate(stages.boxes):
            print(f"{i:3d}  class {b.category:3d}  score {b.score:.6f}  box {list(b.box)}")
        for node, note in engine.notes.items():
            print(f"note: {node}: {note}", file=sys.stderr)
    return 0
