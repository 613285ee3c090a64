"""The csv loader: labels by name or index, images by shape, and each bad cell by position."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bastion.config import DataConfig
from bastion.data import load_dataset
from bastion.errors import ConfigError, DataError


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _table(path: Path, n: int = 30) -> Path:
    rows = [f"{i * 0.5},{i % 7},{'yes' if i % 2 else 'no'}" for i in range(n)]
    return _write(path, ["height,age,label", *rows])


def _config(path: Path, **options: object) -> DataConfig:
    return DataConfig(name="csv", path=path, options=options)


def test_header_and_string_labels(tmp_path: Path) -> None:
    dataset = load_dataset(_config(_table(tmp_path / "t.csv")))
    assert dataset.modality == "tabular"
    assert dataset.input_shape == (2,)
    assert dataset.classes == ("no", "yes")
    assert dataset.meta["features"] == ["height", "age"]
    split = dataset.train
    np.testing.assert_allclose(split.x[:, 0], split.ids * 0.5)
    np.testing.assert_array_equal(split.y, split.ids % 2)


def test_label_by_negative_index_without_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", [f"{i},{i + 1},{i % 3}" for i in range(30)])
    dataset = load_dataset(_config(path, header=False, label=-1))
    assert dataset.classes == ("0", "1", "2")
    np.testing.assert_array_equal(dataset.test.x[:, 1] - dataset.test.x[:, 0], 1.0)


def test_image_shape_and_scale(tmp_path: Path) -> None:
    pixels = np.arange(40 * 4).reshape(40, 4) % 256
    lines = ["label,p0,p1,p2,p3"] + [
        ",".join([str(i % 2), *map(str, row)]) for i, row in enumerate(pixels)
    ]
    dataset = load_dataset(
        _config(_write(tmp_path / "i.csv", lines), image_shape=[1, 2, 2], scale=255)
    )
    assert dataset.modality == "image"
    assert dataset.input_shape == (1, 2, 2)
    np.testing.assert_allclose(
        dataset.val.x.reshape(len(dataset.val), 4) * 255, pixels[dataset.val.ids], atol=1e-3
    )


def test_image_shape_must_fit_the_columns(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"t\.csv: image_shape \[1, 3, 3\]"):
        load_dataset(_config(_table(tmp_path / "t.csv"), image_shape=[1, 3, 3]))


def test_non_numeric_cell_is_named_by_line_and_column(tmp_path: Path) -> None:
    path = _table(tmp_path / "t.csv")
    lines = path.read_text().splitlines()
    lines[5] = "1.5,seven,yes"
    _write(path, lines)
    with pytest.raises(DataError, match=r"t\.csv: line 6, column 'age': 'seven' is not a number"):
        load_dataset(_config(path))


def test_empty_cell(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", ["a,label", "1,0", ",1", "2,0"])
    with pytest.raises(DataError, match=r"t\.csv: line 3, column 'a': empty cell"):
        load_dataset(_config(path))


def test_nan_cell(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", ["a,label", "1,0", "nan,1", "2,0"])
    with pytest.raises(DataError, match=r"t\.csv: line 3, column 'a': 'nan' is not a finite"):
        load_dataset(_config(path))


def test_missing_label_column(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"t\.csv: label column 'target' not found"):
        load_dataset(_config(_table(tmp_path / "t.csv"), label="target"))


def test_label_index_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"t\.csv: label column index 5 is out of range"):
        load_dataset(_config(_table(tmp_path / "t.csv"), label=5))


def test_ragged_row(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", ["a,b,label", "1,2,0", "1,0", "2,3,1"])
    with pytest.raises(DataError, match=r"t\.csv: line 3 has 2 cells; expected 3"):
        load_dataset(_config(path))


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(DataError, match=r"e\.csv: the file is empty"):
        load_dataset(_config(tmp_path / "e.csv"))
    _write(tmp_path / "h.csv", ["a,label"])
    with pytest.raises(DataError, match=r"h\.csv: no data rows"):
        load_dataset(_config(tmp_path / "h.csv"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"gone\.csv: file not found"):
        load_dataset(_config(tmp_path / "gone.csv"))


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_bytes(b"a,label\n\xff\xfe,1\n")
    with pytest.raises(DataError, match=r"t\.csv: not UTF-8"):
        load_dataset(_config(tmp_path / "t.csv"))


def test_unknown_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.options\.sep: unknown option .*delimiter"):
        load_dataset(_config(_table(tmp_path / "t.csv"), sep=";"))


def test_single_class_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", ["a,label", "1,x", "2,x", "3,x"])
    with pytest.raises(DataError, match=r"t\.csv: at least two classes"):
        load_dataset(_config(path))
