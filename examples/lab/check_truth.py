#!/usr/bin/env python3
"""Check that derive_truth.py still derives every committed dataset as committed.

usage: check_truth.py [DATASET...]     (default: every directory of examples/data)

Each dataset is copied to a scratch directory and derived again; every value of
the committed truth.json must come out identical (new keys are allowed: the
derivation may learn more, it may not change what it said). Prints one line per
dataset and the first differences; exits 1 if any dataset changed. Needs what
derive_truth.py needs (tshark, capinfos, zstd). About 5 s per dataset.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")


def changed(old, new, path, out):
    """Every value of `old` must be in `new` unchanged (extra keys in new are fine)."""
    if isinstance(old, dict):
        if not isinstance(new, dict):
            out.append(f"{path}: was an object")
            return
        for k, v in old.items():
            if k not in new:
                out.append(f"{path}/{k}: missing")
            else:
                changed(v, new[k], f"{path}/{k}", out)
    elif isinstance(old, list):
        if not isinstance(new, list) or len(old) != len(new):
            out.append(f"{path}: list of {len(old)} became "
                       f"{len(new) if isinstance(new, list) else type(new).__name__}")
            return
        for i, (a, b) in enumerate(zip(old, new)):
            changed(a, b, f"{path}[{i}]", out)
    elif old != new:
        out.append(f"{path}: {old!r} -> {new!r}")


def main(argv):
    names = argv[1:] or sorted(n for n in os.listdir(DATA) if os.path.isdir(os.path.join(DATA, n)))
    bad = 0
    with tempfile.TemporaryDirectory(prefix="wtlab-check-") as tmp:
        for n in names:
            src = os.path.join(DATA, n)
            dst = os.path.join(tmp, n)
            shutil.copytree(src, dst)
            r = subprocess.run([sys.executable, os.path.join(HERE, "derive_truth.py"), dst, "--quiet",
                                "--allow-empty"], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{n}: derive_truth.py failed: {r.stderr.strip()}")
                bad += 1
                continue
            diffs = []
            changed(json.load(open(os.path.join(src, "truth.json"))),
                    json.load(open(os.path.join(dst, "truth.json"))), "", diffs)
            print(f"{n}: {'unchanged' if not diffs else f'{len(diffs)} values changed'}")
            for d in diffs[:10]:
                print("   ", d)
            bad += bool(diffs)
            shutil.rmtree(dst)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
