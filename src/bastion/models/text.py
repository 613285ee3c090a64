"""Reference text classifiers — the spam filters the text channel attacks and hardens.

Two models, both offering ``fit(texts, labels)`` and ``predict_proba(list[str])``:

* :class:`TfidfLogReg` — TF-IDF over character n-grams within word boundaries (or words)
  and a logistic regression: the strong, classic spam-filter baseline, as a scikit-learn
  pipeline.
* :class:`CharBagNet` — a small PyTorch model (fastText-like): hashed character n-grams
  (scikit-learn's ``HashingVectorizer``, a stable MurmurHash3 so the same text always maps to
  the same rows) averaged by an ``nn.EmbeddingBag``, then a one-hidden-layer head.

Artifacts are folders like the image models' (``model.json`` with ``format_version``, the
kind, its arguments, the class names, ``extra`` and the sha256 of the weights file, written
atomically). No pickle is ever loaded: the TF-IDF model stores its vocabulary, IDF weights
and coefficients in ``weights.npz`` (read with ``allow_pickle=False``), the PyTorch model a
``state_dict`` read with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from torch import Tensor, nn

from bastion.errors import ModelError

__all__ = [
    "TEXT_FORMAT_VERSION",
    "CharBagNet",
    "TextClassifier",
    "TextModelSpec",
    "TfidfLogReg",
    "load_text_model",
    "read_text_spec",
    "save_text_model",
]

TEXT_FORMAT_VERSION = 1
LabelsLike = Sequence[int] | np.ndarray
_SPEC = "model.json"


@runtime_checkable
class TextClassifier(Protocol):
    """What training and attacks need of a text model."""

    classes: tuple[str, ...]

    def fit(self, texts: Sequence[str], labels: Sequence[int] | np.ndarray) -> TextClassifier: ...

    def predict_proba(self, texts: list[str]) -> np.ndarray: ...


def _as_texts(texts: Sequence[str] | np.ndarray, owner: str) -> list[str]:
    items = list(texts)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ModelError(f"{owner}: input {i} is {type(item).__name__}, not str")
    return items


def _as_labels(labels: Sequence[int] | np.ndarray, n: int, classes: int, owner: str) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,) or (n and y.dtype.kind not in "iu"):
        raise ModelError(f"{owner}: labels must be {n} integers; got {y.shape} of {y.dtype}")
    if n and (y.min() < 0 or y.max() >= classes):
        raise ModelError(f"{owner}: labels must lie in 0..{classes - 1}")
    return y.astype(np.int64)


class TfidfLogReg:
    """TF-IDF features and logistic regression (scikit-learn), balanced class weights."""

    kind: ClassVar[str] = "tfidf_logreg"

    def __init__(
        self,
        *,
        classes: Sequence[str] = ("ham", "spam"),
        analyzer: str = "char_wb",
        ngram_min: int = 2,
        ngram_max: int = 5,
        min_df: int = 2,
        C: float = 10.0,  # noqa: N803  (scikit-learn's name for the inverse regularisation)
        max_iter: int = 2000,
        seed: int = 0,
    ) -> None:
        if analyzer not in ("char_wb", "char", "word"):
            raise ModelError(f"analyzer must be 'char_wb', 'char' or 'word'; got {analyzer!r}")
        if not 1 <= ngram_min <= ngram_max:
            raise ModelError(f"need 1 <= ngram_min <= ngram_max; got {ngram_min}, {ngram_max}")
        self.classes = tuple(classes)
        self.arguments: dict[str, Any] = {
            "analyzer": analyzer,
            "ngram_min": ngram_min,
            "ngram_max": ngram_max,
            "min_df": min_df,
            "C": C,
            "max_iter": max_iter,
            "seed": seed,
        }
        self.pipeline = self._pipeline()
        self._fitted = False

    def _pipeline(self) -> Pipeline:
        a = self.arguments
        return Pipeline(
            [
                (
                    "tfidf",
                    TfidfVectorizer(
                        analyzer=a["analyzer"],
                        ngram_range=(a["ngram_min"], a["ngram_max"]),
                        min_df=a["min_df"],
                        sublinear_tf=True,
                        dtype=np.float64,
                    ),
                ),
                (
                    "logreg",
                    LogisticRegression(
                        C=a["C"],
                        max_iter=a["max_iter"],
                        class_weight="balanced",
                        random_state=a["seed"],
                    ),
                ),
            ]
        )

    def fit(
        self, texts: Sequence[str] | np.ndarray, labels: Sequence[int] | np.ndarray
    ) -> TfidfLogReg:
        items = _as_texts(texts, self.kind)
        y = _as_labels(labels, len(items), len(self.classes), self.kind)
        if len(np.unique(y)) < 2:
            raise ModelError(f"{self.kind}: training needs examples of at least two classes")
        self.pipeline = self._pipeline()
        self.pipeline.fit(items, y)
        self._fitted = True
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if not self._fitted:
            raise ModelError(f"{self.kind}: the model is not trained (call fit or load)")
        items = _as_texts(texts, self.kind)
        if not items:
            return np.empty((0, len(self.classes)))
        probs = np.asarray(self.pipeline.predict_proba(items), dtype=np.float64)
        full = np.zeros((len(items), len(self.classes)))
        full[:, np.asarray(self.pipeline.classes_, dtype=np.int64)] = probs
        return full

    # -- persistence (no pickle) --------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        tfidf: TfidfVectorizer = self.pipeline.named_steps["tfidf"]
        logreg: LogisticRegression = self.pipeline.named_steps["logreg"]
        terms = sorted(tfidf.vocabulary_, key=tfidf.vocabulary_.__getitem__)
        return {
            "terms": np.asarray(terms, dtype=np.str_),
            "idf": np.asarray(tfidf.idf_, dtype=np.float64),
            "coef": np.asarray(logreg.coef_, dtype=np.float64),
            "intercept": np.asarray(logreg.intercept_, dtype=np.float64),
            "fitted_classes": np.asarray(logreg.classes_, dtype=np.int64),
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        terms = [str(t) for t in arrays["terms"]]
        pipeline = self._pipeline()
        tfidf: TfidfVectorizer = pipeline.named_steps["tfidf"]
        tfidf.vocabulary_ = {t: i for i, t in enumerate(terms)}
        tfidf.idf_ = np.asarray(arrays["idf"], dtype=np.float64)
        logreg: LogisticRegression = pipeline.named_steps["logreg"]
        logreg.coef_ = np.asarray(arrays["coef"], dtype=np.float64)
        logreg.intercept_ = np.asarray(arrays["intercept"], dtype=np.float64)
        logreg.classes_ = np.asarray(arrays["fitted_classes"], dtype=np.int64)
        logreg.n_features_in_ = len(terms)
        if logreg.coef_.shape[1] != len(terms) or len(tfidf.idf_) != len(terms):
            raise ModelError(
                f"{self.kind}: weights do not match the vocabulary ({len(terms)} terms, "
                f"coef {logreg.coef_.shape}, idf {tfidf.idf_.shape})"
            )
        self.pipeline = pipeline
        self._fitted = True


class _CharBagModule(nn.Module):
    """EmbeddingBag over hashed n-gram ids (weighted mean), then ReLU MLP head."""

    def __init__(self, buckets: int, dim: int, hidden: int, num_classes: int) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(buckets, dim, mode="sum")
        self.hidden = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, num_classes)

    def features(self, ids: Tensor, offsets: Tensor, weights: Tensor) -> Tensor:
        pooled: Tensor = self.embedding(ids, offsets, per_sample_weights=weights)
        hidden: Tensor = self.hidden(pooled)
        return hidden

    def forward(self, ids: Tensor, offsets: Tensor, weights: Tensor) -> Tensor:
        logits: Tensor = self.head(self.features(ids, offsets, weights))
        return logits


class CharBagNet:
    """A small PyTorch text classifier: hashed character n-grams into an EmbeddingBag."""

    kind: ClassVar[str] = "char_bag"

    def __init__(
        self,
        *,
        classes: Sequence[str] = ("ham", "spam"),
        buckets: int = 2**14,
        dim: int = 32,
        hidden: int = 32,
        ngram_min: int = 2,
        ngram_max: int = 4,
        epochs: int = 6,
        batch_size: int = 128,
        lr: float = 1e-2,
        seed: int = 0,
    ) -> None:
        if buckets < 16 or dim < 1 or hidden < 1 or epochs < 1 or batch_size < 1 or lr <= 0:
            raise ModelError(
                "char_bag: buckets >= 16, dim, hidden, epochs, batch_size >= 1 and lr > 0 needed"
            )
        self.classes = tuple(classes)
        self.arguments: dict[str, Any] = {
            "buckets": buckets,
            "dim": dim,
            "hidden": hidden,
            "ngram_min": ngram_min,
            "ngram_max": ngram_max,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
        }
        self._hasher = HashingVectorizer(
            analyzer="char_wb",
            ngram_range=(ngram_min, ngram_max),
            n_features=buckets,
            alternate_sign=False,
            norm="l1",
        )
        self.module = self._module()

    def _module(self) -> _CharBagModule:
        a = self.arguments
        torch.manual_seed(a["seed"])
        return _CharBagModule(a["buckets"], a["dim"], a["hidden"], len(self.classes))

    def _encode(self, texts: list[str]) -> tuple[Tensor, Tensor, Tensor]:
        return self._tensors(sparse.csr_matrix(self._hasher.transform(texts)))

    @staticmethod
    def _tensors(rows: sparse.csr_matrix) -> tuple[Tensor, Tensor, Tensor]:
        ids = torch.from_numpy(rows.indices.astype(np.int64))
        offsets = torch.from_numpy(rows.indptr[:-1].astype(np.int64))
        weights = torch.from_numpy(rows.data.astype(np.float32))
        return ids, offsets, weights

    def fit(
        self, texts: Sequence[str] | np.ndarray, labels: Sequence[int] | np.ndarray
    ) -> CharBagNet:
        items = _as_texts(texts, self.kind)
        y = torch.from_numpy(_as_labels(labels, len(items), len(self.classes), self.kind))
        a = self.arguments
        self.module = self._module()
        counts = torch.bincount(y, minlength=len(self.classes)).clamp(min=1).float()
        loss_fn = nn.CrossEntropyLoss(weight=counts.sum() / (len(self.classes) * counts))
        optimizer = torch.optim.Adam(self.module.parameters(), lr=a["lr"])
        rows = sparse.csr_matrix(self._hasher.transform(items))
        generator = torch.Generator().manual_seed(a["seed"])
        self.module.train()
        for _ in range(a["epochs"]):
            order = torch.randperm(len(items), generator=generator).numpy()
            for start in range(0, len(items), a["batch_size"]):
                batch = order[start : start + a["batch_size"]]
                logits = self.module(*self._tensors(rows[batch]))
                loss = loss_fn(logits, y[torch.from_numpy(batch)])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self.module.eval()
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        items = _as_texts(texts, self.kind)
        if not items:
            return np.empty((0, len(self.classes)))
        with torch.no_grad():
            logits = self.module(*self._encode(items))
        return torch.softmax(logits.double(), dim=1).numpy()


_KINDS: dict[str, type[TfidfLogReg] | type[CharBagNet]] = {
    TfidfLogReg.kind: TfidfLogReg,
    CharBagNet.kind: CharBagNet,
}
_WEIGHTS = {TfidfLogReg.kind: "weights.npz", CharBagNet.kind: "weights.pt"}


@dataclass(frozen=True, kw_only=True)
class TextModelSpec:
    """What ``model.json`` of a text model artifact says."""

    kind: str
    arguments: dict[str, Any]
    classes: tuple[str, ...]
    weights_sha256: str
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = TEXT_FORMAT_VERSION


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_text_model(
    model: TfidfLogReg | CharBagNet, folder: str | Path, *, extra: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model`` to ``folder`` atomically (a temporary sibling renamed into place)."""
    folder = Path(folder)
    if isinstance(model, TfidfLogReg) and not model._fitted:
        raise ModelError("tfidf_logreg: cannot save a model that was never trained")
    try:
        json.dumps(dict(extra or {}))
    except TypeError as exc:
        raise ModelError(f"extra must be JSON-serialisable: {exc}") from exc
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        weights = staging / _WEIGHTS[model.kind]
        if isinstance(model, TfidfLogReg):
            with weights.open("wb") as handle:
                np.savez(handle, allow_pickle=False, **model._arrays())
        else:
            torch.save(model.module.state_dict(), weights)
        spec = {
            "format_version": TEXT_FORMAT_VERSION,
            "kind": model.kind,
            "arguments": model.arguments,
            "classes": list(model.classes),
            "weights_sha256": _sha256(weights),
            "extra": dict(extra or {}),
        }
        (staging / _SPEC).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        if folder.exists():
            backup = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            os.replace(folder, backup)
            os.replace(staging, folder)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def read_text_spec(folder: str | Path) -> TextModelSpec:
    """The checked contents of ``folder/model.json``."""
    path = Path(folder) / _SPEC
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"{path}: not a text model artifact (model.json is missing)") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable model description ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path}: model.json must hold an object")
    version = data.get("format_version")
    if version != TEXT_FORMAT_VERSION:
        raise ModelError(f"{path}: format_version must be {TEXT_FORMAT_VERSION}; got {version!r}")
    kind = data.get("kind")
    if kind not in _KINDS:
        raise ModelError(f"{path}: kind must be one of {sorted(_KINDS)}; got {kind!r}")
    try:
        return TextModelSpec(
            kind=str(kind),
            arguments=dict(data["arguments"]),
            classes=tuple(str(c) for c in data["classes"]),
            weights_sha256=str(data["weights_sha256"]),
            extra=dict(data.get("extra") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: model.json lacks or mangles a field ({exc})") from exc


def load_text_model(folder: str | Path) -> TfidfLogReg | CharBagNet:
    """Rebuild the model saved in ``folder``; refuses a weights file that does not match."""
    folder = Path(folder)
    spec = read_text_spec(folder)
    weights = folder / _WEIGHTS[spec.kind]
    if not weights.is_file():
        raise ModelError(f"{weights}: weights file is missing")
    if _sha256(weights) != spec.weights_sha256:
        raise ModelError(f"{weights}: sha256 differs from model.json (truncated or swapped?)")
    try:
        model = _KINDS[spec.kind](classes=spec.classes, **spec.arguments)
    except TypeError as exc:
        raise ModelError(f"{folder}: arguments do not fit {spec.kind}: {exc}") from exc
    try:
        if isinstance(model, TfidfLogReg):
            with np.load(weights, allow_pickle=False) as arrays:
                model._restore({k: arrays[k] for k in arrays.files})
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            model.module.load_state_dict(state)
            model.module.eval()
    except ModelError:
        raise
    except Exception as exc:  # numpy/torch raise many kinds for a damaged file
        raise ModelError(f"{weights}: cannot load the weights ({exc})") from exc
    return model
