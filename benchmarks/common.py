"""What the benchmark scripts share: the conv configs, timing groups, other processes' load, peak
memory, the machine and BLAS description, and matconv's GEMM floor.

Nothing here is timed against a target by itself; ``bench_conv.py``, ``profile_conv.py`` and
``bench_train.py`` print the tables ``benchmarks/README.md`` quotes.
"""
from __future__ import annotations

import ctypes
import gc
import glob
import math
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime

import numpy as np

try:
    import matconv
except ImportError:  # running from a checkout without the package installed
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import matconv

# name: (N, C_in, H, W, C_out, k, stride, pad, dilation, groups)
CONFIGS = {
    "A": (64, 1, 28, 28, 16, 5, 1, 2, 1, 1),
    "B": (64, 16, 14, 14, 32, 3, 1, 1, 1, 1),
    "C": (64, 32, 32, 32, 64, 3, 1, 1, 1, 1),
    "D": (256, 1, 8, 8, 16, 3, 1, 1, 1, 1),
    "E": (64, 16, 28, 28, 32, 3, 2, 1, 1, 1),
    "F": (64, 16, 28, 28, 32, 3, 1, 2, 2, 1),
    # extra configs (not in the targets), the evidence for lowering='auto':
    # one input and one output channel per group, where the whole sparse operator wins
    "G": (64, 16, 14, 14, 16, 3, 1, 1, 1, 16),   # depthwise
    "H": (64, 1, 28, 28, 1, 5, 1, 2, 1, 1),      # a single filter
}
TARGET_CONFIGS = ("A", "B", "C", "D", "E", "F")

SLEEP = 0.2          # s before each group: OpenBLAS's and PyTorch's threads spin after a call
DISTURBED = 0.15     # other processes' load (cores) above which a timing group is measured again
QUIET = 0.05         # ... and below which the machine counts as quiet again
MAX_ATTEMPTS = 4
MIN_GROUP_TIME = 0.1  # s: fast cases get more repeats than asked (up to MAX_REPEATS)
MAX_REPEATS = 101
QUIET_MAX_WAIT = 60.0


def describe(name, cfg):
    N, C, H, W, Co, k, s, p, d, g = cfg
    return f"{name} ({N},{C},{H},{W})->{Co} k{k} s{s} p{p} d{d}" + (f" g{g}" if g > 1 else "")


def output_size(cfg):
    N, C, H, W, Co, k, s, p, d, g = cfg
    return ((H + 2 * p - d * (k - 1) - 1) // s + 1, (W + 2 * p - d * (k - 1) - 1) // s + 1)


def flops(cfg):
    """2 x multiply-adds of the forward (the backward is twice this)."""
    N, C, H, W, Co, k, s, p, d, g = cfg
    Ho, Wo = output_size(cfg)
    return 2 * N * Co * Ho * Wo * (C // g) * k * k


def batch_last_view(a):
    """``a``'s values as an (N, C, H, W) view of (C, H, W, N) memory (what layers pass on)."""
    return np.ascontiguousarray(np.moveaxis(a, 0, -1)).transpose(3, 0, 1, 2)


# --------------------------------------------------------------------------- load and timing
class ForeignLoad:
    """CPU time other processes used while a block ran, in cores (0 = the machine was ours).

    Busy ticks of the whole machine from ``/proc/stat`` minus this process's own CPU time: a
    concurrent test run or build on this 2-core machine shows up here and explains outliers.
    """

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as f:
                v = [int(t) for t in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = sum(v[:3]) + sum(v[5:8])          # user nice system irq softirq steal
        own = os.times()
        return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system, time.perf_counter()

    def __enter__(self):
        self.start = self._sample()
        return self

    def __exit__(self, *exc):
        end = self._sample()
        if self.start is None or end is None:
            self.cores = float("nan")
        else:
            busy, own, wall = (e - s for e, s in zip(end, self.start))
            self.cores = max(busy - own, 0.0) / max(wall, 1e-9)
        return False


def wait_until_quiet(max_wait=QUIET_MAX_WAIT):
    """Sleep in short windows until other processes leave the CPUs (at most ``max_wait`` s)."""
    t_end = time.perf_counter() + max_wait
    while True:
        with ForeignLoad() as load:
            time.sleep(SLEEP)
        if not load.cores > QUIET or time.perf_counter() > t_end:
            return


class Timer:
    """Medians of timing groups (at least ``repeats`` calls after ``warmup``); a group disturbed
    by other processes is measured again after the machine has gone quiet (``attempts``)."""

    def __init__(self, repeats=9, warmup=2, min_group_time=MIN_GROUP_TIME,
                 attempts=MAX_ATTEMPTS):
        self.repeats, self.warmup, self.min_group_time = repeats, warmup, min_group_time
        self.attempts = attempts
        self.loads = []          # other processes' load (cores) during each kept group
        self.retries = 0

    def __call__(self, fn):
        t_call = float("inf")
        for _ in range(max(self.warmup, 1)):
            t0 = time.perf_counter()
            fn()
            t_call = min(t_call, time.perf_counter() - t0)
        n = max(self.repeats, min(MAX_REPEATS, math.ceil(self.min_group_time / max(t_call,
                                                                                   1e-9))))
        for attempt in range(self.attempts):
            if attempt:
                wait_until_quiet()
            gc.collect()
            with ForeignLoad() as load:  # the window includes the pause: >= 0.2 s of ticks
                time.sleep(SLEEP)
                gc.disable()
                try:
                    times = []
                    for _ in range(n):
                        t0 = time.perf_counter()
                        fn()
                        times.append(time.perf_counter() - t0)
                finally:
                    gc.enable()
            if not load.cores > DISTURBED or attempt + 1 == self.attempts:
                break
            self.retries += 1
        self.loads.append(load.cores)
        return statistics.median(times) * 1e3


# --------------------------------------------------------------------------- memory
def _status(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _release_free_memory():
    """Give memory freed by earlier code back to the system, so it does not hide new peaks."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak resident memory while a block runs: ``peak`` (bytes, the whole process) and ``extra``
    (above the resident memory at the start, after freed memory went back to the system).
    Linux resets the peak by ``/proc/self/clear_refs``; elsewhere both are ``nan``."""

    def __enter__(self):
        _release_free_memory()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.base = _status("VmRSS")
        except OSError:
            self.base = None
        return self

    def __exit__(self, *exc):
        peak = _status("VmHWM") if self.base is not None else None
        self.peak = float(peak) if peak is not None else float("nan")
        self.extra = float(peak - self.base) if peak is not None else float("nan")
        return False


def peak_extra_mb(fn, calls=2):
    """MiB of resident memory ``calls`` calls of ``fn`` add at their peak (call it on fresh
    objects: what they cache and keep for the next call is part of their cost)."""
    with PeakMemory() as mem:
        for _ in range(calls):
            fn()
    return mem.extra / 2**20


# --------------------------------------------------------------------------- the machine
def blas_info():
    """numpy's BLAS: library, version, kernel (architecture), threading layer and threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        rows = [i for i in threadpool_info() if i.get("user_api") == "blas"
                and "numpy" in (i.get("filepath") or "")] or \
               [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if rows:
            i = rows[0]
            return (f"{i.get('internal_api')} {i.get('version')}, kernel {i.get('architecture')}, "
                    f"{i.get('threading_layer')}, {i.get('num_threads')} threads "
                    f"({os.path.basename(i.get('filepath', ''))})")
    libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libdir, "*openblas*.so*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix in ("64_", ""):
            try:
                core = getattr(lib, f"scipy_openblas_get_corename{suffix}")
                nthr = getattr(lib, f"scipy_openblas_get_num_threads{suffix}")
            except AttributeError:
                continue
            core.restype = ctypes.c_char_p
            return f"openblas, kernel {core().decode()}, {nthr()} threads"
    return "unknown (install threadpoolctl to see it)"


def machine_info(extra=()):
    """Lines describing the machine, the libraries and the environment of this run."""
    import scipy

    cpu, flags = "unknown", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu == "unknown":
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = line
    except OSError:
        pass
    if "avx512f" in flags.split():
        cpu += " (avx512f)"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    env = {k: os.environ.get(k, "<unset>") for k in
           ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    from matconv.operators.parallel import get_num_threads
    return [
        f"date        {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"cpu         {cpu}, {os.cpu_count()} cores ({usable} usable), load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} at the start",
        f"python      {platform.python_version()}, numpy {np.__version__}, scipy "
        f"{scipy.__version__}, matconv {matconv.__version__} ({get_num_threads()} threads)",
        *extra,
        f"blas        {blas_info()}",
        "env         " + ", ".join(f"{k}={v}" for k, v in env.items()),
    ]


# --------------------------------------------------------------------------- the GEMM floor
def floor_operands(cfg, dtype, rng):
    """Ready operands of matconv's three im2col GEMMs for ``cfg`` (one group):
    ``W (O, CK)``, ``cols (CK, L*N)``, ``dY (O, L*N)`` and output arrays for each product."""
    N, C, H, W, Co, k, s, p, d, g = cfg
    L = math.prod(output_size(cfg))
    CK = C // g * k * k
    Wm = rng.standard_normal((Co // g, CK)).astype(dtype)
    cols = rng.standard_normal((CK, L * N)).astype(dtype)
    dY = rng.standard_normal((Co // g, L * N)).astype(dtype)
    outs = (np.empty((Co // g, L * N), dtype), np.empty((CK, L * N), dtype),
            np.empty((CK, Co // g), dtype))
    return Wm, cols, dY, outs, g


def gemm_floor(cfg, dtype, timer, rng):
    """ms of matconv's three im2col GEMMs on ready operands, numpy's GEMM with its own threads:
    ``{"fwd": W cols, "dx": W.T dY, "dW": cols dY.T}`` (times ``groups`` for grouped configs)."""
    Wm, cols, dY, (y, dcols, dw), g = floor_operands(cfg, dtype, rng)
    return {"fwd": timer(lambda: np.matmul(Wm, cols, out=y)) * g,
            "dx": timer(lambda: np.matmul(Wm.T, dY, out=dcols)) * g,
            "dW": timer(lambda: np.matmul(cols, dY.T, out=dw)) * g}
