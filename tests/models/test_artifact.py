"""Model artifacts: exact round trip, atomic writes, and a clear error for each broken part."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from bastion import models
from bastion.errors import ModelError
from bastion.models import SPEC_FILE, WEIGHTS_FILE

CLASSES = [str(d) for d in range(10)]


def _save(model: torch.nn.Module, folder: Path, **overrides: object) -> Path:
    values: dict[str, object] = {
        "architecture": "small_cnn",
        "arguments": {},
        "input_shape": (1, 8, 8),
        "classes": CLASSES,
        "input_scaling": {"scale": 16.0},
    }
    values.update(overrides)
    return models.save(model, folder, **values)  # type: ignore[arg-type]


@pytest.fixture
def artifact(digits_cnn_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the shared digits artifact, free to break."""
    return Path(shutil.copytree(digits_cnn_dir, tmp_path / "model"))


def _edit_spec(folder: Path, **changes: object) -> None:
    path = folder / SPEC_FILE
    spec = json.loads(path.read_text())
    spec.update(changes)
    path.write_text(json.dumps(spec))


def test_round_trip_gives_identical_logits(digits, digits_cnn, digits_cnn_dir: Path) -> None:
    loaded = models.load(digits_cnn_dir)
    x, _ = digits.test.tensors()
    with torch.no_grad():
        assert torch.equal(loaded(x), digits_cnn(x))
        assert torch.equal(loaded.features(x), digits_cnn.features(x))
    assert not loaded.training


def test_spec_describes_the_model(digits, digits_cnn_dir: Path) -> None:
    spec = models.read_spec(digits_cnn_dir)
    assert spec.architecture == "small_cnn"
    assert spec.input_shape == digits.input_shape
    assert spec.classes == digits.classes
    assert spec.num_classes == 10
    assert spec.input_scaling == {"scale": 16.0}
    assert spec.extra == {}
    assert spec.format_version == models.FORMAT_VERSION
    on_disk = json.loads((digits_cnn_dir / SPEC_FILE).read_text())
    assert set(on_disk) == {
        "format_version",
        "architecture",
        "arguments",
        "input_shape",
        "classes",
        "input_scaling",
        "extra",
        "weights_sha256",
    }


def test_weights_are_a_plain_state_dict(digits_cnn_dir: Path) -> None:
    state = torch.load(digits_cnn_dir / WEIGHTS_FILE, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_arguments_round_trip(tmp_path: Path) -> None:
    model = models.build("mlp", input_shape=(5,), num_classes=3, hidden=(8, 4))
    folder = models.save(
        model,
        tmp_path / "mlp",
        architecture="mlp",
        arguments={"hidden": (8, 4)},
        input_shape=(5,),
        classes=["a", "b", "c"],
        input_scaling={"scale": 1.0},
        extra={"note": "tabular"},
    )
    loaded = models.load(folder)
    x = torch.rand(6, 5)
    assert torch.equal(loaded(x), model(x))
    assert models.read_spec(folder).extra == {"note": "tabular"}


def test_truncated_weights(artifact: Path) -> None:
    weights = artifact / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match=r"weights\.pt: sha256 .* does not match model\.json"):
        models.load(artifact)


def test_truncated_weights_with_a_matching_sha_still_fail_to_read(artifact: Path) -> None:
    import hashlib

    weights = artifact / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    _edit_spec(artifact, weights_sha256=hashlib.sha256(weights.read_bytes()).hexdigest())
    with pytest.raises(ModelError, match=r"weights\.pt: cannot read the weights"):
        models.load(artifact)


def test_weights_of_another_shape(artifact: Path, tmp_path: Path) -> None:
    wide = models.build("small_cnn", input_shape=(1, 8, 8), num_classes=10, hidden=64)
    other = _save(wide, tmp_path / "wide", arguments={"hidden": 64})
    shutil.copy(other / WEIGHTS_FILE, artifact / WEIGHTS_FILE)
    _edit_spec(artifact, weights_sha256=models.read_spec(other).weights_sha256)
    with pytest.raises(ModelError, match=r"weight '.*' has shape \(64, 512\).*needs \(128, 512\)"):
        models.load(artifact)


def test_weights_of_another_architecture(artifact: Path, tmp_path: Path) -> None:
    other = _save(
        models.build("mlp", input_shape=(1, 8, 8), num_classes=10),
        tmp_path / "mlp",
        architecture="mlp",
    )
    shutil.copy(other / WEIGHTS_FILE, artifact / WEIGHTS_FILE)
    _edit_spec(artifact, weights_sha256=models.read_spec(other).weights_sha256)
    with pytest.raises(ModelError, match=r"weights do not match the architecture .*missing"):
        models.load(artifact)


def test_missing_weights(artifact: Path) -> None:
    (artifact / WEIGHTS_FILE).unlink()
    with pytest.raises(ModelError, match=r"weights\.pt: missing"):
        models.load(artifact)


def test_missing_spec(artifact: Path) -> None:
    (artifact / SPEC_FILE).unlink()
    with pytest.raises(ModelError, match=r"model\.json: missing"):
        models.load(artifact)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"nothing-here: model artifact folder not found"):
        models.load(tmp_path / "nothing-here")


def test_invalid_json(artifact: Path) -> None:
    (artifact / SPEC_FILE).write_text('{"architecture": "small_cnn",')
    with pytest.raises(ModelError, match=r"model\.json: invalid JSON"):
        models.read_spec(artifact)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"architecture": "resnet"}, "unknown architecture 'resnet'"),
        ({"arguments": {"depth": 3}}, "unknown argument 'depth'"),
        ({"input_shape": "8x8"}, "field 'input_shape'"),
        ({"weights_sha256": "abc"}, "field 'weights_sha256'"),
        ({"format_version": 99}, "format_version 99 is not supported"),
        ({"trained_by": "me"}, "field 'trained_by': unknown key"),
    ],
)
def test_mismatched_description(artifact: Path, changes: dict[str, object], message: str) -> None:
    _edit_spec(artifact, **changes)
    with pytest.raises(ModelError, match=rf"model\.json: .*{message}"):
        models.load(artifact)


def test_description_must_fit_the_model_before_anything_is_written(
    digits_cnn, tmp_path: Path
) -> None:
    with pytest.raises(ModelError, match=r"cannot save .*weights do not match"):
        _save(digits_cnn, tmp_path / "bad", architecture="mlp")
    with pytest.raises(ModelError, match=r"weight '.*' has shape"):
        _save(digits_cnn, tmp_path / "bad", classes=["a", "b"])
    assert list(tmp_path.iterdir()) == []


def test_unserialisable_extra(digits_cnn, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"extra must be JSON-serialisable"):
        _save(digits_cnn, tmp_path / "m", extra={"temperature": float("nan")})


def test_save_replaces_an_artifact_but_not_other_folders(digits_cnn, tmp_path: Path) -> None:
    folder = _save(digits_cnn, tmp_path / "m", extra={"version": 1})
    _save(digits_cnn, folder, extra={"version": 2})
    assert models.read_spec(folder).extra == {"version": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "notes.txt").write_text("keep me")
    with pytest.raises(ModelError, match=r"refusing to replace .*results"):
        _save(digits_cnn, tmp_path / "results")
    assert (tmp_path / "results" / "notes.txt").read_text() == "keep me"


def test_a_crash_while_saving_keeps_the_old_artifact(
    digits_cnn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _save(digits_cnn, tmp_path / "m", extra={"version": 1})

    def crash(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match=r"disk full"):
        _save(digits_cnn, folder, extra={"version": 2})
    monkeypatch.undo()
    assert models.read_spec(folder).extra == {"version": 1}
    models.load(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_update_extra_merges_and_keeps_the_artifact_loadable(artifact: Path, digits) -> None:
    before = models.load(artifact)
    first = models.update_extra(artifact, temperature=1.5)
    second = models.update_extra(artifact, threshold=0.2, temperature=1.25)
    assert first.extra == {"temperature": 1.5}
    assert second.extra == {"temperature": 1.25, "threshold": 0.2}
    assert models.read_spec(artifact) == second
    assert sorted(p.name for p in artifact.iterdir()) == [SPEC_FILE, WEIGHTS_FILE]
    x, _ = digits.test.tensors()
    with torch.no_grad():
        assert torch.equal(models.load(artifact)(x), before(x))


def test_update_extra_refuses_unserialisable_values(artifact: Path) -> None:
    with pytest.raises(ModelError, match=r"JSON-serialisable"):
        models.update_extra(artifact, model=torch.nn.Linear(1, 1))
    assert models.read_spec(artifact).extra == {}


def test_missing_field(artifact: Path) -> None:
    spec = json.loads((artifact / SPEC_FILE).read_text())
    del spec["classes"]
    (artifact / SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(ModelError, match=r"model\.json: field 'classes': Field required"):
        models.read_spec(artifact)
