"""Read an MPS or LP file with HiGHS and save its arrays as a plain ``.npz`` (no pickles) for the host.

Usage: python read_model.py MODEL_FILE OUT_NPZ

The model file comes from an optimizer agent: its parser runs here, in a sandboxed process with time and memory
limits, so a file that makes the reader crash, loop or allocate without end costs this process only. The host
then loads plain numeric and text arrays. This script imports nothing from nemo_opt.
"""

from __future__ import annotations

import sys

import highspy
import numpy as np


def arrays(source: str) -> dict[str, np.ndarray]:
    """The model's rows, bounds, objective, integrality, names and Hessian as arrays; ValueError when HiGHS cannot
    read the file."""
    highs = highspy.Highs()
    highs.silent()
    if highs.readModel(source) == highspy.HighsStatus.kError:
        raise ValueError(f"HiGHS cannot read {source.rsplit('/', 1)[-1]}")
    lp = highs.getLp()
    matrix = lp.a_matrix_
    hessian = highs.getModel().hessian_
    return dict(
        shape=np.asarray([lp.num_row_, lp.num_col_], dtype=np.int64),
        colwise=np.asarray(matrix.format_ == highspy.MatrixFormat.kColwise),
        value=np.asarray(matrix.value_, dtype=float),
        index=np.asarray(matrix.index_, dtype=np.int64),
        start=np.asarray(matrix.start_, dtype=np.int64),
        row_lower=np.asarray(lp.row_lower_, dtype=float),
        row_upper=np.asarray(lp.row_upper_, dtype=float),
        col_lower=np.asarray(lp.col_lower_, dtype=float),
        col_upper=np.asarray(lp.col_upper_, dtype=float),
        cost=np.asarray(lp.col_cost_, dtype=float),
        offset=np.asarray(float(lp.offset_)),
        maximize=np.asarray(lp.sense_ == highspy.ObjSense.kMaximize),
        integrality=np.asarray([int(t) for t in lp.integrality_] or [0] * lp.num_col_, dtype=np.int8),
        col_names=np.asarray(list(lp.col_names_), dtype=str),
        row_names=np.asarray(list(lp.row_names_), dtype=str),
        hessian_dim=np.asarray(int(hessian.dim_)),
        hessian_square=np.asarray(hessian.format_ == highspy.HessianFormat.kSquare),
        hessian_value=np.asarray(hessian.value_, dtype=float),
        hessian_index=np.asarray(hessian.index_, dtype=np.int64),
        hessian_start=np.asarray(hessian.start_, dtype=np.int64),
    )


def main() -> int:
    try:
        found = arrays(sys.argv[1])
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    np.savez(sys.argv[2], **found)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
