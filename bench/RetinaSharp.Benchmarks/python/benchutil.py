"""Shared helpers of the benchmark reference scripts (python/*_ref.py): arguments, timing, memory, the result line.

The C# suites run each script with Debian's /usr/bin/python3, from the source tree or from the build output's
python/ folder (the .csproj copies python/*.py there, this module included); Python puts the script's own folder
first on sys.path, so `import benchutil` works from both.

Memory is read from /proc/self/status (Linux): VmRSS now, VmHWM the peak. Not resource.getrusage().ru_maxrss: a
child started by fork+exec inherits its parent's peak there (a python3 child of a process holding 800 MB reports
ru_maxrss 810 MB and VmHWM 8 MB), so a reference run from the .NET suite would report the suite's own memory.
"""
import argparse
import os
import statistics
import time


def blas():
    """The BLAS that Debian's python3-torch resolves libblas.so.3 to ("openblas-pthread", "reference", ...). The
    reference BLAS is ~50x slower than an optimised one, which would flatter every ratio against torchvision: with it,
    a warning says to install libopenblas0-pthread (apt-get install libopenblas0-pthread) before trusting the numbers."""
    try:
        target = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
    except OSError:
        return "unknown"
    name = "openblas-pthread" if "openblas-pthread" in target else "openblas" if "openblas" in target else \
        "blis" if "blis" in target else "reference" if "/blas/" in target else os.path.basename(os.path.dirname(target))
    if name == "reference":
        import sys
        print("warning: libblas.so.3 is the reference BLAS; apt-get install libopenblas0-pthread for a fair reference",
              file=sys.stderr)
    return name


def parse_args(doc, *positionals):
    """Parses sys.argv: each positional is (name, type) or (name, type, default); a default makes it optional.
    `doc` (the script's docstring) is the help text; a wrong argument prints the usage and exits with code 2."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for spec in positionals:
        name, kind = spec[0], spec[1]
        if len(spec) > 2:
            parser.add_argument(name, type=kind, nargs="?", default=spec[2])
        else:
            parser.add_argument(name, type=kind)
    return parser.parse_args()


def int_list(text):
    """An argument like "2,1000,80" -> [2, 1000, 80]."""
    return [int(s) for s in text.split(",")]


def status_kb(key):
    """A field of /proc/self/status in kB ("VmRSS:", "VmHWM:"), or 0 when absent."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def rss_mb():
    """Resident memory now, MB (MiB)."""
    return status_kb("VmRSS:") / 1024.0


def peak_rss_mb():
    """Peak resident memory of this process since it started or since reset_peak_rss(), MB (MiB)."""
    return status_kb("VmHWM:") / 1024.0


def reset_peak_rss():
    """Sets the peak (VmHWM) to the current RSS (writes 5 to /proc/self/clear_refs); False when not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Stopwatch:
    """Wall time (perf_counter) and process CPU time of all threads (process_time) since start or the last lap()."""

    def __init__(self):
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def lap(self):
        """(wall seconds, CPU seconds) since the previous lap, and starts the next one."""
        wall, cpu = time.perf_counter(), time.process_time()
        lap = (wall - self.wall0, cpu - self.cpu0)
        self.wall0, self.cpu0 = wall, cpu
        return lap


def median_wall_and_cpu(fn, warmup, repeats):
    """Runs fn warmup times untimed, then repeats times: (median wall seconds, median CPU seconds)."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        watch = Stopwatch()
        fn()
        w, c = watch.lap()
        wall.append(w)
        cpu.append(c)
    return statistics.median(wall), statistics.median(cpu)


def median_seconds(fn, warmup, repeats):
    """Median wall seconds of fn over repeats runs after warmup untimed runs."""
    return median_wall_and_cpu(fn, warmup, repeats)[0]


def report(prefix, **fields):
    """Prints one result line "PREFIX key=value ..." (no prefix when it is empty) that the C# suite parses with
    Measure.ParseKeyValues; floats are written in full (repr: the shortest text that reads back the same), other
    values with str()."""
    parts = [prefix] if prefix else []
    parts += [f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items()]
    print(" ".join(parts), flush=True)
