"""List the model zoo and what is cached; --fetch downloads one into the cache now."""

from __future__ import annotations

import argparse
import os

from .. import zoo
from ..errors import VidclsError

HELP = "list the model zoo"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fetch", metavar="NAME", help="download a zoo model into the cache now")


def run(args: argparse.Namespace) -> int:
    if args.fetch:
        name = args.fetch.lower()
        if name not in zoo.MODELS:
            raise VidclsError(f"unknown model '{args.fetch}' (zoo models: {', '.join(zoo.MODELS)})")
        print(zoo.fetch(zoo.MODELS[name]))
        return 0
    rows = [("name", "variant", "precision", "input", "fps", "size", "available")]
    for m in zoo.MODELS.values():
        where = zoo.availability(m)
        size = m.size_bytes and f"{m.size_bytes / 1e6:.1f} MB" or "?"
        if where == "cached":
            size = f"{zoo.cached_path(m).stat().st_size / 1e6:.1f} MB"
        input_size = f"{m.input_size}x{m.input_size}"
        rows.append((m.name, m.variant, m.precision, input_size, f"{m.fps:g}", size, where))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    print(f"\ncache: {zoo.cache_dir()}")
    mirror = os.environ.get("VIDCLS_MIRROR")
    print(f"source: {'mirror ' + mirror if mirror else 'published (TF Hub / Kaggle)'}")
    return 0
