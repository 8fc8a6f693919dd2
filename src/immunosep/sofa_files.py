"""Score a table of patient-days in a file: SOFA for every row of a CSV or Parquet file, chunk by chunk.

The file side of ``immunosep sofa --input/--output``: CSV is read with pandas in chunks, Parquet with
Arrow by record batches; each chunk is scored by the clinical kernel (a Parquet batch's columns go to
numpy without pandas, :func:`immunosep.clinical.sofa.score_sofa_columns`; a CSV chunk through
:func:`~immunosep.clinical.sofa.score_sofa_frame_arrays`; ids and other columns pass untouched) and appended to the output, so a table of any length runs in bounded memory.
It does I/O, so it sits above the pure clinical core and below the store (docs/architecture.md); the
command line draws the progress bar from the ``progress`` callback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from immunosep.clinical.sofa_columns import SCORE_COLUMNS
from immunosep.errors import ImmunoSepError

#: Rows per chunk by default (the memory bound of a run; ``--chunk-rows``).
CHUNK_ROWS = 250_000

#: Told ``(rows done, total rows or None when unknown before the end, as for CSV)`` before the first
#: chunk and after each one.
Progress = Callable[[int, int | None], None]


def table_format(path: Path, role: str) -> str:
    """``csv`` or ``parquet`` from the file name; ``role`` (input, output) names the file in the refusal."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ImmunoSepError(f"{role} file {path} must end in .csv or .parquet", field=role)


def _read_chunks(path: Path, chunk_rows: int) -> tuple[int | None, Iterator[Any]]:
    """(total rows if known, iterator of chunks): Arrow tables for Parquet, pandas frames for CSV."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ImmunoSepError(f"input file {path} does not exist")
    if table_format(path, "input") == "csv":
        import pandas as pd  # CSV only: a Parquet file goes from Arrow to numpy without pandas

        try:
            reader = pd.read_csv(path, chunksize=chunk_rows)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ImmunoSepError(f"cannot read {path} as CSV: {exc}") from None
        return None, iter(reader)
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error types for a damaged or non-Parquet file
        raise ImmunoSepError(f"cannot read {path} as Parquet: {exc}") from None
    return pf.metadata.num_rows, (pa.Table.from_batches([b]) for b in pf.iter_batches(batch_size=chunk_rows))


def _file_rows(message: str, offset: int) -> str:
    """Turn the kernel's 0-based row index within a chunk into a 1-based row number of the file."""
    return re.sub(r"row index (\d+)", lambda m: f"row {int(m.group(1)) + offset + 1}", message)


def _valid_mask(array: Any, n: int, offset: int) -> Any:
    """The validity bitmap of an Arrow array as a numpy bool array (True = not null)."""
    import numpy as np

    bits = np.unpackbits(
        np.frombuffer(array.buffers()[0], dtype=np.uint8), count=offset + n, bitorder="little"
    )
    return bits[offset:].view(np.bool_)


def _arrow_numpy(column: Any) -> Any:
    """An Arrow column as a numpy array, read straight from Arrow's buffers: pyarrow's own ``to_numpy``
    imports pandas and its ``cast`` imports pyarrow.compute, together half a second of a one-second
    command (issue 21). Numbers become float64 with NaN for null (no copy for a float64 column without
    nulls; float32 and integers are widened exactly as ``pyarrow.compute.cast`` widens them); booleans
    without nulls stay booleans (the kernel reads them as 0/1), with nulls they become 0/1/NaN. Text goes
    through ``to_numpy`` (the kernel accepts numbers written as text and refuses the rest with the row)."""
    import numpy as np
    import pyarrow as pa

    kind = column.type
    numeric = pa.types.is_floating(kind) or pa.types.is_integer(kind)
    if not (numeric or pa.types.is_boolean(kind)):
        return column.to_numpy(zero_copy_only=False)
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n, offset = len(array), array.offset
    if numeric:
        dtype = np.dtype(kind.to_pandas_dtype())
        values = np.frombuffer(array.buffers()[1], dtype=dtype, count=n, offset=offset * dtype.itemsize)
        values = values.astype(np.float64, copy=False)
    else:  # booleans are packed eight to a byte, least significant bit first
        data = np.frombuffer(array.buffers()[1], dtype=np.uint8)
        flags = np.unpackbits(data, count=offset + n, bitorder="little")[offset:].view(np.bool_)
        if not array.null_count:
            return flags
        values = flags.astype(np.float64)
    if array.null_count:
        values = np.where(_valid_mask(array, n, offset), values, np.nan)
    return values


def _score_chunk(chunk: Any) -> dict[str, Any]:
    """SOFA arrays for a chunk: Arrow columns straight to numpy, a CSV chunk (pandas) through the frame
    kernel; ids and other columns pass untouched."""
    import pyarrow as pa

    from immunosep.clinical.sofa import SOFA_FRAME_COLUMNS, score_sofa_columns, score_sofa_frame_arrays

    if isinstance(chunk, pa.Table):
        return score_sofa_columns(
            {c: _arrow_numpy(chunk.column(c)) for c in chunk.column_names if c in SOFA_FRAME_COLUMNS}
        )
    return score_sofa_frame_arrays(chunk)


def _with_scores_arrow(chunk: Any, scored: dict[str, Any]) -> Any:
    """The chunk as an Arrow table with the score columns (sofa_missing dictionary-encoded) appended."""
    import pyarrow as pa

    from immunosep.clinical.sofa import MISSING_NAME_BY_MASK, SOFA_FRAME_COLUMNS

    if isinstance(chunk, pa.Table):
        table = chunk
    else:
        frame = chunk.copy(deep=False)
        for col in SOFA_FRAME_COLUMNS.intersection(frame.columns) - {"ventilated"}:
            # a CSV chunk without NaN reads as int: keep one float type across chunks
            frame[col] = frame[col].astype("float64")
        table = pa.Table.from_pandas(frame, preserve_index=False)
    for col in SCORE_COLUMNS:
        if col in table.column_names:
            table = table.drop_columns([col])
        table = table.append_column(col, _arrow_from_numpy(scored[col], pa.int8()))
    if "sofa_missing" in table.column_names:
        table = table.drop_columns(["sofa_missing"])
    missing = pa.DictionaryArray.from_arrays(
        _arrow_from_numpy(scored["sofa_missing_mask"], pa.uint8()), _arrow_strings(MISSING_NAME_BY_MASK)
    )
    return table.append_column("sofa_missing", missing)


# pa.array() imports pandas on first use (its type checks), a third of a second of a one-second command:
# the two helpers below build the score columns from their buffers instead.
def _arrow_from_numpy(values: Any, arrow_type: Any) -> Any:
    """A one-byte integer numpy array as an Arrow array of ``arrow_type``, sharing its memory."""
    import numpy as np
    import pyarrow as pa

    data = np.ascontiguousarray(values)
    if data.dtype.itemsize != 1:
        raise TypeError(f"expected one-byte integers, got {data.dtype}")
    return pa.Array.from_buffers(arrow_type, len(data), [None, pa.py_buffer(data)])


def _arrow_strings(texts: tuple[str, ...]) -> Any:
    """``texts`` as an Arrow string array (UTF-8 data and 32-bit offsets)."""
    import numpy as np
    import pyarrow as pa

    encoded = [t.encode() for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    return pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )


def _with_scores_frame(chunk: Any, scored: dict[str, Any]) -> Any:
    import pyarrow as pa

    from immunosep.clinical.sofa import missing_names

    frame = chunk.to_pandas() if isinstance(chunk, pa.Table) else chunk.copy()
    for col in SCORE_COLUMNS:
        frame[col] = scored[col]
    frame["sofa_missing"] = missing_names(scored["sofa_missing_mask"])
    return frame


def score_file(
    input_path: Path,
    output_path: Path,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> int:
    """Score every patient-day of ``input_path`` into ``output_path`` chunk by chunk; returns the row count.

    The output is the input plus the SOFA columns. It is written to ``<output>.part`` and renamed when
    complete, so an error never leaves a half-written table behind. An error in a row names the file and
    the row (numbered from 1 after the header). A Parquet chunk is written by a second thread while the
    next one is read and scored (Arrow releases the GIL while it encodes and writes); one write at a
    time, in order, so the file is the same as when written in turn.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    import pyarrow as pa
    import pyarrow.parquet as pq

    out_format = table_format(output_path, "output")
    if input_path.resolve() == output_path.resolve():
        raise ImmunoSepError("the output file must differ from the input file", field="output")
    total, chunks = _read_chunks(input_path, chunk_rows)
    partial = output_path.with_name(output_path.name + ".part")
    writer: pq.ParquetWriter | None = None
    done = 0
    pending: tuple[Future[None], int] | None = None  # the chunk being written, and the rows done after it

    def settle() -> None:
        """Wait for the chunk being written (raising its error) and report its rows."""
        nonlocal pending
        if pending is not None:
            write, rows = pending
            pending = None
            write.result()
            if progress is not None:
                progress(rows, total)

    if progress is not None:
        progress(0, total)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sofa-write") as background:
        try:
            for chunk in chunks:
                try:
                    scored = _score_chunk(chunk)
                except ImmunoSepError as exc:
                    raise ImmunoSepError(
                        f"{input_path}: {_file_rows(str(exc), done)} (rows numbered from 1 after the header)"
                    ) from None
                rows = chunk.num_rows if isinstance(chunk, pa.Table) else len(chunk)
                if out_format == "parquet":
                    table = _with_scores_arrow(chunk, scored)
                    if writer is None:
                        # dictionary encoding only where it pays: not for high-cardinality float columns
                        dictionary = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
                        writer = pq.ParquetWriter(partial, table.schema, use_dictionary=dictionary)
                    elif not table.schema.equals(writer.schema):  # Table.cast imports pyarrow.compute
                        try:
                            table = table.cast(writer.schema)
                        except (pa.ArrowInvalid, ValueError) as exc:
                            raise ImmunoSepError(
                                f"{input_path}: a column changes type from row {done + 1} on ({exc}); "
                                "give that column one type, raise --chunk-rows, or write CSV"
                            ) from None
                    settle()
                    pending = (background.submit(writer.write_table, table), done + rows)
                    done += rows
                else:
                    frame = _with_scores_frame(chunk, scored)
                    frame.to_csv(partial, mode="w" if done == 0 else "a", header=done == 0, index=False)
                    done += rows
                    if progress is not None:
                        progress(done, total)
            settle()
        except BaseException:
            if pending is not None:  # let the write in flight finish before the file is closed and removed
                pending[0].exception()
            if writer is not None:
                writer.close()
            partial.unlink(missing_ok=True)
            raise
    if writer is not None:
        writer.close()
    if done == 0:
        partial.unlink(missing_ok=True)
        raise ImmunoSepError(f"{input_path} has no rows to score")
    partial.replace(output_path)
    return done
