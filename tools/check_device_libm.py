"""Check host/chip/libm.py bit for bit against newlib's expf/logf compiled for rv32imafc and run in qemu.

The oracle: newlib's own ef_exp.c/ef_log.c/wf_exp.c/wf_log.c (and the few helpers they call),
compiled with Debian's riscv64-unknown-elf-gcc for the ESP32-P4 ISA (rv32imafc, ilp32f) at the
optimisation level newlib is built with, linked into a freestanding static program (no libc: its own
_start, Linux read/write/exit syscalls) and run under qemu-riscv32. The program reads float32
arguments on stdin and writes the float32 results on stdout. Nothing from newlib is written into
the repository: the sources are read from Debian's newlib-source tarball (or, with --newlib-git,
from a git copy of Espressif's fork) into a temporary directory.

    python tools/check_device_libm.py                      # Debian newlib 3.3.0, -O2, 10**6 random
    python tools/check_device_libm.py --newlib-git /work/.mirror/espressif+newlib-esp32/repo \
        --ref esp-4.3.0 --write-golden fixtures/libm/newlib_rv32imafc.json
    python tools/check_device_libm.py --native-fma          # the same routines, x86-64 gcc -O2 -mfma

Prints, per function and argument set: mismatches against the numpy model (must be 0), and how
many results differ from the host C library (glibc) and from np.exp/np.log in float64 rounded to
float32. Exits 1 on any mismatch, 0 otherwise (also when it skips for lack of the toolchain).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import functools
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from host.chip import libm  # noqa: E402

CC = "riscv64-unknown-elf-gcc"
QEMU = "qemu-riscv32"
ARCH = ["-march=rv32imafc", "-mabi=ilp32f"]
NEWLIB_HEADERS = Path("/usr/include/newlib")
DEBIAN_TARBALL = Path("/usr/src/newlib/newlib-3.3.0.tar.xz")
PACKAGES = "gcc-riscv64-unknown-elf libnewlib-dev newlib-source qemu-user"
# newlib files the oracle compiles (relative to newlib/ in the source tree); missing optional ones are skipped.
SOURCES = ("libm/math/ef_exp.c", "libm/math/ef_log.c", "libm/math/wf_exp.c", "libm/math/wf_log.c")
HELPERS = ("libm/common/sf_finite.c", "libm/common/sf_nan.c", "libm/common/math_errf.c")
HEADERS = ("libm/common/fdlibm.h", "libm/common/math_config.h")
EXPF_EXPONENTS = range(-16, 5)
OPS = {"expf": 0, "logf": 1}

# The freestanding harness: op code and count on stdin, then float32 arguments; results on stdout.
HARNESS = r"""
extern float expf(float);
extern float logf(float);
enum __fdlibm_version { __fdlibm_ieee = -1, __fdlibm_posix };
enum __fdlibm_version __fdlib_version = __fdlibm_ieee;  /* newlib's default (s_lib_ver.c) */
static int errno_value;
int *__errno(void) { return &errno_value; }

static long sys3(long n, long a, long b, long c) {
  register long a0 __asm__("a0") = a;
  register long a1 __asm__("a1") = b;
  register long a2 __asm__("a2") = c;
  register long a7 __asm__("a7") = n;
  __asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
  return a0;
}
static void leave(int code) { for (;;) sys3(93, code, 0, 0); }
static void read_full(void *buf, long n) {
  char *p = (char *)buf;
  while (n > 0) { long r = sys3(63, 0, (long)p, n); if (r <= 0) leave(2); p += r; n -= r; }
}
static void write_full(const void *buf, long n) {
  const char *p = (const char *)buf;
  while (n > 0) { long r = sys3(64, 1, (long)p, n); if (r <= 0) leave(3); p += r; n -= r; }
}
#define CHUNK 4096
static float in[CHUNK], out[CHUNK];
void oracle_main(void) {
  int head[2];
  read_full(head, sizeof head);
  long left = head[1];
  while (left > 0) {
    long n = left < CHUNK ? left : CHUNK;
    read_full(in, n * 4);
    for (long i = 0; i < n; i++) out[i] = head[0] == 0 ? expf(in[i]) : logf(in[i]);
    write_full(out, n * 4);
    left -= n;
  }
  leave(0);
}
__asm__(".section .text._start\n.globl _start\n_start:\n.option push\n.option norelax\n"
        "la gp, __global_pointer$\n.option pop\ncall oracle_main\n");
"""


def missing_tools() -> list[str]:
    """What the oracle needs and this machine lacks (empty when it can build and run)."""
    lacking = [t for t in (CC, QEMU) if shutil.which(t) is None]
    if not (NEWLIB_HEADERS / "newlib.h").is_file():
        lacking.append(str(NEWLIB_HEADERS / "newlib.h"))
    return lacking


def newlib_from_tarball(tarball: Path) -> tuple[dict[str, bytes], str]:
    """The oracle's newlib files from a release tarball, and a version label."""
    wanted = SOURCES + HELPERS + HEADERS
    found: dict[str, bytes] = {}
    with tarfile.open(tarball) as tar:
        for member in tar:
            parts = member.name.split("/", 2)
            if len(parts) == 3 and parts[1] == "newlib" and parts[2] in wanted:
                found[parts[2]] = tar.extractfile(member).read()
    return found, tarball.name.removesuffix(".tar.xz")


def newlib_from_git(git_dir: Path, ref: str) -> tuple[dict[str, bytes], str]:
    """The oracle's newlib files at `ref` of a git copy of newlib (e.g. Espressif's newlib-esp32)."""
    found: dict[str, bytes] = {}
    for rel in SOURCES + HELPERS + HEADERS:
        run = subprocess.run(
            ["git", f"--git-dir={git_dir}", "show", f"{ref}:newlib/{rel}"], capture_output=True, check=False
        )
        if run.returncode == 0:
            found[rel] = run.stdout
    commit = subprocess.run(
        ["git", f"--git-dir={git_dir}", "rev-parse", ref], capture_output=True, text=True, check=True
    ).stdout.strip()
    return found, f"{git_dir.name if git_dir.name != 'repo' else git_dir.parent.name}@{ref} ({commit})"


def build_oracle(files: dict[str, bytes], workdir: Path, opt: str) -> tuple[Path, list[str]]:
    """Compile the newlib routines and the harness into a static rv32imafc program; returns it and the flags."""
    missing = [rel for rel in SOURCES + ("libm/common/fdlibm.h",) if rel not in files]
    if missing:
        raise SystemExit(f"newlib source lacks {', '.join(missing)}")
    for rel, data in files.items():
        (workdir / Path(rel).name).write_bytes(data)
    (workdir / "harness.c").write_text(HARNESS)
    cflags = [*ARCH, opt, "-fno-builtin", "-ffunction-sections", "-fdata-sections"]
    objects = []
    for rel in SOURCES + HELPERS:
        if rel not in files:
            continue
        src = workdir / Path(rel).name
        obj = src.with_suffix(".o")
        subprocess.run(
            [CC, *cflags, "-w", "-I", str(workdir), "-isystem", str(NEWLIB_HEADERS), "-c", str(src), "-o", str(obj)],
            check=True,
        )
        objects.append(str(obj))
    elf = workdir / "oracle.elf"
    subprocess.run(
        [CC, *ARCH, "-O2", "-nostdlib", "-static", "-Wl,--gc-sections", "-o", str(elf),
         str(workdir / "harness.c"), *objects, "-lgcc"],
        check=True,
    )
    return elf, cflags


def build_native(files: dict[str, bytes], workdir: Path, opt: str) -> tuple[Path, list[str]]:
    """The same newlib routines built for this host with `cc -mfma` (x86-64) as a shared library.

    A second GCC back end with a fused float multiply-add: identical results mean GCC's contraction
    choices for these routines do not depend on the target (the argument for ESP32-S3's madd.s).
    """
    for rel, data in files.items():
        (workdir / Path(rel).name).write_bytes(data)
    (workdir / "glue.c").write_text(
        "static int e; int *__errno(void) { return &e; }\n"
        "enum __fdlibm_version { __fdlibm_ieee = -1, __fdlibm_posix };\n"
        "enum __fdlibm_version __fdlib_version = __fdlibm_ieee;\n"
    )
    gcc_include = subprocess.run(["cc", "-print-file-name=include"], capture_output=True, text=True,
                                 check=True).stdout.strip()
    renames = [f"-D{n}=nl_{n}" for n in ("expf", "logf", "finitef", "nanf")]
    cflags = [opt, "-mfma", "-fno-builtin", "-fPIC"]
    sources = [str(workdir / Path(rel).name) for rel in SOURCES + HELPERS if rel in files]
    lib = workdir / "libnewlib_native.so"
    subprocess.run(
        ["cc", *cflags, "-shared", "-w", "-nostdinc", "-isystem", gcc_include, "-I", str(workdir),
         "-isystem", str(NEWLIB_HEADERS), *renames, *sources, str(workdir / "glue.c"), "-o", str(lib)],
        check=True,
    )
    return lib, ["cc", *cflags]


def run_native(lib: Path, op: str, args: np.ndarray) -> np.ndarray:
    """expf/logf of float32 `args` from the host build of the newlib routines."""
    fn = getattr(ctypes.CDLL(str(lib)), f"nl_{op}")
    fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    out = np.array([fn(float(v)) for v in np.asarray(args, dtype=np.float32).reshape(-1)], dtype=np.float32)
    out.view(np.uint32)[np.isnan(out)] = libm.CANONICAL_NAN  # x86 propagates NaN payloads; RISC-V does not
    return out


def fused_instructions(elf: Path) -> dict[str, int]:
    """How many fused multiply-add instructions each compiled routine contains (objdump of the oracle)."""
    dump = subprocess.run(["riscv64-unknown-elf-objdump", "-d", str(elf)], capture_output=True, text=True,
                          check=True).stdout
    counts: dict[str, int] = {}
    name = None
    for line in dump.splitlines():
        if line.endswith(">:"):
            name = line.split("<", 1)[1][:-2]
        elif name and any(f"\t{op}." in line for op in ("fmadd", "fmsub", "fnmsub", "fnmadd")):
            counts[name] = counts.get(name, 0) + 1
    return counts


def run_oracle(elf: Path, op: str, args: np.ndarray) -> np.ndarray:
    """expf/logf of float32 `args` computed by the compiled newlib routines under qemu."""
    args = np.ascontiguousarray(args, dtype=np.float32).reshape(-1)
    stdin = np.array([OPS[op], args.size], dtype="<i4").tobytes() + args.astype("<f4").tobytes()
    run = subprocess.run([QEMU, str(elf)], input=stdin, capture_output=True, check=True)
    out = np.frombuffer(run.stdout, dtype="<f4")
    if out.size != args.size:
        raise SystemExit(f"oracle returned {out.size} results for {args.size} arguments")
    return out.astype(np.float32)


def _glibc(op: str, args: np.ndarray) -> np.ndarray:
    lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    fn = getattr(lib, op)
    fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    return np.array([fn(float(v)) for v in args], dtype=np.float32)


def _rounded(op: str, args: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return getattr(np, op[:-1])(args.astype(np.float64)).astype(np.float32)


def expf_multiples_args() -> np.ndarray:
    """k * 2**e for k in [-255, 255] and e in [-16, 4], exponent-major."""
    k = np.arange(-libm.TABLE_RADIUS, libm.TABLE_RADIUS + 1)
    return np.concatenate([libm.multiples(k, e) for e in EXPF_EXPONENTS])


def inverse_sigmoid_args() -> np.ndarray:
    """logf's argument in inverse_sigmoid, (float)(1.0 / (double)(float)p - 1.0), for p = i / 10000."""
    p = (np.arange(1, 10000) / 10000.0).astype(np.float32)
    return (1.0 / p.astype(np.float64) - 1.0).astype(np.float32)


def special_args() -> np.ndarray:
    """Signed zeros, infinities, a NaN, subnormals, and each side of every threshold in the two routines."""
    words = [0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7FA00001, 1, 0x80000001, 0x007FFFFF, 0x00800000,
             0xB3C00000]  # -1.5 * 2**-24: the one expf argument where newlib 3.3.0 and 4.x differ
    for w in (0x42B17217, 0x42B17180, 0x42CFF1B5, 0x3EB17218, 0x3F851592, 0x34000000, 0x31800000, 0x3F800000):
        for d in (-2, -1, 0, 1, 2):
            words += [w + d, (w + d) | 0x80000000]
    return np.array(words, dtype=np.uint32).view(np.float32)


def random_args(op: str, n: int, seed: int) -> np.ndarray:
    """n arguments: half random finite bit patterns, half uniform over the range where the result is finite."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32)
    if op == "logf":
        bits &= 0x7FFFFFFF
    x = bits.view(np.float32)
    x = x[np.isfinite(x)][: n // 2]
    if op == "expf":
        y = rng.uniform(-104.0, 89.0, size=n - x.size).astype(np.float32)
    else:
        y = np.exp2(rng.uniform(-149.0, 128.0, size=n - x.size)).astype(np.float32)
    return np.concatenate([x, y[np.isfinite(y)]])


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.view(np.uint32) == b.view(np.uint32)


def model(op: str, args: np.ndarray, fused: bool, tiny: int) -> np.ndarray:
    """The numpy model of the routine the oracle was built from."""
    if op == "expf":
        return libm._expf_array(args, fused, tiny)
    return libm._logf_array(args, fused)


def compare(evaluate, op: str, what: str, args: np.ndarray, fused: bool, tiny: int) -> tuple[int, np.ndarray]:
    """Print the figures for one argument set; returns the mismatch count and the oracle's results."""
    oracle = evaluate(op, args)
    mine = model(op, args, fused, tiny)
    mismatches = int((~_same(mine, oracle)).sum())
    finite = np.isfinite(oracle)
    n = max(1, int(finite.sum()))
    glibc = int((~_same(_glibc(op, args), oracle) & finite).sum())
    rounded = int((~_same(_rounded(op, args), oracle) & finite).sum())
    contraction = int((~_same(model(op, args, not fused, tiny), oracle)).sum())
    print(
        f"{op} {what:<16} n={args.size:>7}  mismatches: {mismatches}  differ from glibc: {glibc} ({glibc / n:.2%}), "
        f"from float64-rounded: {rounded} ({rounded / n:.2%}), from the {'un' if fused else ''}fused model: "
        f"{contraction}"
    )
    if mismatches:
        bad = np.flatnonzero(~_same(model, oracle))[:5]
        for i in bad:
            print(f"   arg {args[i]!r} ({args[i:i+1].view(np.uint32)[0]:#010x}): oracle "
                  f"{oracle[i:i+1].view(np.uint32)[0]:#010x} model {model[i:i+1].view(np.uint32)[0]:#010x}")
    return mismatches, oracle


def _hex(a: np.ndarray) -> str:
    return " ".join(f"{w:08x}" for w in np.asarray(a, dtype=np.float32).view(np.uint32))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--newlib-tarball", type=Path, default=DEBIAN_TARBALL)
    parser.add_argument("--newlib-git", type=Path, help="git dir of a newlib tree (e.g. Espressif's newlib-esp32)")
    parser.add_argument("--ref", default="esp-4.3.0", help="ref to read with --newlib-git")
    parser.add_argument("--opt", default="-O2", help="optimisation flag newlib is built with (-O2, -Os, -O1, ...)")
    parser.add_argument("--libm", default=libm.CHIP_LIBM, choices=libm.LIBMS, help="numpy model variant to check")
    parser.add_argument("--random", type=int, default=1_000_000, help="random arguments per function")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-golden", type=Path, help="write the oracle's results as a golden JSON file")
    parser.add_argument("--native-fma", action="store_true",
                        help="check the same routines built for this host with cc -mfma instead of the qemu oracle")
    args = parser.parse_args(argv)

    lacking = missing_tools() if not args.native_fma else [
        t for t in ("cc", str(NEWLIB_HEADERS / "newlib.h")) if shutil.which(t) is None and not Path(t).exists()]
    if args.native_fma and " fma " not in Path("/proc/cpuinfo").read_text().replace("\n", " "):
        lacking.append("a host CPU with FMA")
    if args.newlib_git is None and not args.newlib_tarball.is_file():
        lacking.append(str(args.newlib_tarball))
    if lacking:
        print(f"skipped: {', '.join(lacking)} not found; install the Debian packages {PACKAGES}")
        return 0
    if args.newlib_git is not None:
        files, version = newlib_from_git(args.newlib_git, args.ref)
    else:
        files, version = newlib_from_tarball(args.newlib_tarball)
    cc_version = qemu_version = ""
    if not args.native_fma:
        cc_version = subprocess.run([CC, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
        qemu_version = subprocess.run([QEMU, "--version"], capture_output=True, text=True,
                                      check=True).stdout.splitlines()[0]
    source = files["libm/math/ef_exp.c"].decode()
    tiny = 0x34000000 if "hx < 0x34000000" in source else 0x31800000
    fused = args.libm == libm.CHIP_LIBM
    total = 0
    results: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="libm-oracle-") as tmp:
        if args.native_fma:
            if args.write_golden:
                raise SystemExit("--write-golden records the rv32imafc oracle: drop --native-fma")
            lib, cflags = build_native(files, Path(tmp), args.opt)
            evaluate = functools.partial(run_native, lib)
            fused_ops = {}
            host_cc = subprocess.run(["cc", "--version"], capture_output=True, text=True, check=True).stdout
            print(f"native: newlib {version}; {host_cc.splitlines()[0]}; {' '.join(cflags)}")
        else:
            elf, cflags = build_oracle(files, Path(tmp), args.opt)
            evaluate = functools.partial(run_oracle, elf)
            fused_ops = fused_instructions(elf)
            print(f"oracle: newlib {version}; {cc_version}; {' '.join(cflags)}; {qemu_version}")
            print(f"fused multiply-adds in the compiled routines: {fused_ops or 'none'}")
        print(f"model: host.chip.libm, libm={args.libm}, expf returns 1 + x below |x| word {tiny:#x}")
        sets = {
            "expf": {"k*2**e": expf_multiples_args(), "special": special_args(),
                     "random": random_args("expf", args.random, args.seed)},
            "logf": {"inverse_sigmoid": inverse_sigmoid_args(), "special": special_args(),
                     "random": random_args("logf", args.random, args.seed + 1)},
        }
        for op, named in sets.items():
            results[op] = {}
            for what, values in named.items():
                bad, oracle = compare(evaluate, op, what, values, fused, tiny)
                total += bad
                results[op][what] = oracle
        if args.write_golden:
            golden = {
                "provenance": {
                    "what": "float32 bit patterns of newlib's expf/logf (fdlibm ef_exp.c/ef_log.c via wf_exp.c/"
                            "wf_log.c) compiled for the ESP32-P4 ISA and run under qemu-riscv32",
                    "newlib": version,
                    "compiler": cc_version,
                    "cflags": " ".join(cflags),
                    "qemu": qemu_version,
                    "fused_multiply_adds": fused_ops,
                    "command": "python tools/check_device_libm.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                },
                "expf_multiples": {
                    "k": [-libm.TABLE_RADIUS, libm.TABLE_RADIUS],
                    "values": {str(e): _hex(row) for e, row in zip(
                        EXPF_EXPONENTS, results["expf"]["k*2**e"].reshape(len(EXPF_EXPONENTS), -1))},
                },
                "logf_inverse_sigmoid": {
                    "p": "i / 10000 for i in 1..9999",
                    "args": _hex(inverse_sigmoid_args()),
                    "values": _hex(results["logf"]["inverse_sigmoid"]),
                },
            }
            for op in ("expf", "logf"):
                sample = np.concatenate([sets[op]["special"], sets[op]["random"][:4000]])
                values = np.concatenate([results[op]["special"], results[op]["random"][:4000]])
                golden[f"{op}_sample"] = {"args": _hex(sample), "values": _hex(values)}
            args.write_golden.parent.mkdir(parents=True, exist_ok=True)
            args.write_golden.write_text(json.dumps(golden, indent=1) + "\n")
            print(f"wrote {args.write_golden}")
    print(f"total mismatches: {total}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
