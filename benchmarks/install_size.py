"""Install size of the lite runtime against the full one.

    python benchmarks/install_size.py [--extras lite train] [--workdir DIR] [--torch-spec SPEC]

For each extra, creates a fresh virtual environment in a temporary folder, runs
``pip install <repo>[extra]`` (pip reads the same configuration as here: indexes, find-links,
constraints) and reports the size of its site-packages, the number of distributions installed,
the largest ones and the install time; an empty environment (pip and setuptools only) is
measured beside them. ``train`` first installs ``--torch-spec`` (default the
CPU build the Makefile installs, ``torch==2.13.0``), as ``make install`` does: without it pip
may pick a CUDA build of torch several GiB larger.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def size_of(path: Path) -> int:
    """Bytes of the regular files under ``path`` (links not followed)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def site_packages(venv: Path) -> Path:
    out = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def distributions(venv: Path) -> list[dict]:
    """Installed distributions with the bytes of the files each one recorded."""
    code = (
        "import json, importlib.metadata as m\n"
        "out = []\n"
        "for d in m.distributions():\n"
        "    size = sum((f.size or 0) for f in (d.files or []))\n"
        "    out.append({'name': d.metadata['Name'], 'version': d.version, 'bytes': size})\n"
        "print(json.dumps(out))\n"
    )
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True)
    return sorted(json.loads(out.stdout), key=lambda d: -d["bytes"])


def install(workdir: Path, extra: str, torch_spec: str | None) -> dict:
    venv = workdir / extra
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    started = time.monotonic()
    if torch_spec:
        subprocess.run([*pip, torch_spec], check=True)
    subprocess.run([*pip, f"{REPO}[{extra}]"], check=True)
    seconds = time.monotonic() - started
    dists = distributions(venv)
    names = {d["name"].lower() for d in dists}
    return {
        "extra": extra,
        "bytes": size_of(site_packages(venv)),
        "distributions": len(dists),
        "largest": [f"{d['name']} {d['bytes'] / 2**20:.0f}" for d in dists[:6]],
        "has": {name: name in names for name in ("torch", "lightgbm", "scikit-learn", "onnxruntime", "onnx")},
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extras", nargs="+", default=["lite", "train"])
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the environments here (default: a temp dir).")
    parser.add_argument("--torch-spec", default="torch==2.13.0", help="Installed first into the train environment.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="takeoff-install-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(workdir / "empty")], check=True)
        empty = size_of(site_packages(workdir / "empty"))
        results = []
        for extra in args.extras:
            spec = args.torch_spec if extra == "train" else None
            print(f"installing takeoff[{extra}] ...", file=sys.stderr, flush=True)
            results.append(install(workdir, extra, spec))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)

    print("| install | site-packages MiB | distributions | torch | LightGBM | scikit-learn | onnxruntime | largest (MiB) | install s |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| empty venv (pip, setuptools) | {empty / 2**20:,.0f} | | | | | | | |")
    for r in results:
        yes = {k: "yes" if v else "no" for k, v in r["has"].items()}
        print(f"| `takeoff[{r['extra']}]` | {r['bytes'] / 2**20:,.0f} | {r['distributions']} | {yes['torch']} | "
              f"{yes['lightgbm']} | {yes['scikit-learn']} | {yes['onnxruntime']} | {', '.join(r['largest'])} | "
              f"{r['seconds']:.0f} |")
    if len(results) > 1:
        base = results[0]["bytes"]
        for r in results[1:]:
            print(f"\n`takeoff[{r['extra']}]` is {r['bytes'] / base:.1f}x the size of `takeoff[{results[0]['extra']}]`.")


if __name__ == "__main__":
    main()
