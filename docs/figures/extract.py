"""Run a notebook top to bottom and save one of its figures as a PNG (how the README's figure is made).

    python docs/figures/extract.py notebooks/02_failures.ipynb --cell-contains 'blocks=(D, D)' \
        docs/figures/softmax_regression_hessian_blocks.png

The figure is the first PNG output of the first code cell whose source
contains the given text. Needs the ``test`` extra (nbclient, ipykernel).
"""

from __future__ import annotations

import argparse
import base64
from pathlib import Path

import nbclient
import nbformat


def run(path: Path):
    """The notebook at ``path``, executed in a fresh ``python3`` kernel in its own folder."""
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=900, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return nb


def figure(nb, contains: str) -> bytes:
    """The first PNG shown by the first code cell whose source contains ``contains``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and contains in cell.source:
            for out in cell.outputs:
                if "image/png" in out.get("data", {}):
                    return base64.b64decode(out["data"]["image/png"])
            raise SystemExit(f"the cell containing {contains!r} shows no figure")
    raise SystemExit(f"no code cell contains {contains!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--cell-contains", required=True, help="text in the source of the cell that shows the figure")
    args = parser.parse_args()
    png = figure(run(args.notebook), args.cell_contains)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(png)
    print(f"wrote {args.output} ({len(png) // 1024} KiB)")


if __name__ == "__main__":
    main()
