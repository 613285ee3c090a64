"""Character tables shared by the text attacks and by the sanitiser that undoes them.

Keeping both directions in one place is what makes the round trip testable: every homoglyph
and leetspeak substitution the attacks make is one that :func:`fold_char` (and hence
``bastion.defend.text.Sanitizer``) maps back to the original letter.

Homoglyphs come from the Unicode confusables data shipped by the ``confusable-homoglyphs``
package (Unicode TR39). A non-ASCII character folds to the ASCII letter or digit it is
confusable with, after NFKC and case folding; the attack only uses characters whose fold is
unambiguous and leads back to the letter they replace.
"""

from __future__ import annotations

import string
import unicodedata
from functools import lru_cache

from confusable_homoglyphs import confusables

__all__ = [
    "INVISIBLE",
    "KEYBOARD",
    "LEET",
    "LEET_INVERSE",
    "STOPWORDS",
    "fold_char",
    "fold_table",
    "homoglyphs",
]

#: Zero-width and other invisible format characters (Unicode category Cf).
INVISIBLE: tuple[str, ...] = (
    "\u200b",  # ZERO WIDTH SPACE
    "\u200c",  # ZERO WIDTH NON-JOINER
    "\u200d",  # ZERO WIDTH JOINER
    "\u2060",  # WORD JOINER
    "\u2062",  # INVISIBLE TIMES
    "\u2063",  # INVISIBLE SEPARATOR
    "\ufeff",  # ZERO WIDTH NO-BREAK SPACE
    "\u00ad",  # SOFT HYPHEN
)

#: English function words the search leaves alone: the list NLTK ships as
#: ``stopwords.words("english")`` (179 words), so that Bastion's attacks and TextAttack's
#: recipes (which read NLTK's file) consider the same words.
_STOPWORD_TEXT = """
    i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
    yourselves he him his himself she she's her hers herself it it's its itself they them their
    theirs themselves what which who whom this that that'll these those am is are was were be
    been being have has had having do does did doing a an the and but if or because as until
    while of at by for with about against between into through during before after above below
    to from up down in out on off over under again further then once here there when where why
    how all any both each few more most other some such no nor not only own same so than too
    very s t can will just don don't should should've now d ll m o re ve y ain aren aren't
    couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma
    mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't weren
    weren't won won't wouldn wouldn't"""
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split())

#: Leetspeak: letter -> digit. One digit per letter, so the sanitiser can invert it.
LEET: dict[str, str] = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}
LEET_INVERSE: dict[str, str] = {digit: letter for letter, digit in LEET.items()}

_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
_STAGGER = (0.0, 0.5, 0.75, 1.25)


def _keyboard() -> dict[str, str]:
    """Each key's physical neighbours on a QWERTY keyboard (same row and the rows beside)."""
    where = {key: (r, c + _STAGGER[r]) for r, row in enumerate(_ROWS) for c, key in enumerate(row)}
    out = {}
    for key, (r, x) in where.items():
        near = [
            other
            for other, (r2, x2) in where.items()
            if other != key and abs(r2 - r) <= 1 and abs(x2 - x) <= 1.0
        ]
        out[key] = "".join(sorted(near))
    return out


#: key -> its neighbouring keys (lower case; callers restore case).
KEYBOARD: dict[str, str] = _keyboard()

_ASCII_ALNUM = frozenset(string.ascii_letters + string.digits)


@lru_cache(maxsize=1)
def fold_table() -> dict[str, str]:
    """Non-ASCII character (after NFKC + casefold) -> the ASCII letter/digit it imitates.

    Built from the confusables data: for each ASCII letter or digit, every confusable
    character maps to it (case-folded). A character confusable with several ASCII characters
    that differ after case folding (e.g. one that looks like ``l``, ``I`` and ``1``) maps to
    the first in sorted order; the attacks never use such characters.
    """
    targets: dict[str, set[str]] = {}
    for ascii_char in sorted(_ASCII_ALNUM):
        for entry in confusables.confusables_data.get(ascii_char, ()):
            glyph = entry["c"]
            for key in {glyph, glyph.casefold(), unicodedata.normalize("NFKC", glyph).casefold()}:
                if len(key) == 1 and key not in _ASCII_ALNUM:
                    targets.setdefault(key, set()).add(ascii_char.casefold())
    return {key: sorted(found)[0] for key, found in targets.items()}


def fold_char(char: str) -> str:
    """``char`` as the sanitiser sees it: NFKC, case folded, confusables folded to ASCII."""
    table = fold_table()
    out = []
    for c in unicodedata.normalize("NFKC", char).casefold():
        out.append(table.get(c, c))
    return "".join(out)


@lru_cache(maxsize=1)
def _homoglyph_table() -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for ascii_char in sorted(_ASCII_ALNUM):
        found = []
        for entry in confusables.confusables_data.get(ascii_char, ()):
            glyph = entry["c"]
            if (
                len(glyph) == 1
                and glyph not in _ASCII_ALNUM
                and unicodedata.category(glyph)[0] in "LN"
                and fold_char(glyph) == ascii_char.casefold()
                and _unambiguous(glyph)
            ):
                found.append(glyph)
        if found:
            table[ascii_char] = tuple(found)
    return table


def _unambiguous(glyph: str) -> bool:
    """The glyph is confusable with one ASCII character only (up to case)."""
    table = fold_table()
    keys = {glyph, glyph.casefold(), unicodedata.normalize("NFKC", glyph).casefold()}
    return len({table.get(k, k) for k in keys if len(k) == 1}) == 1


def homoglyphs(char: str) -> tuple[str, ...]:
    """Look-alikes of the ASCII letter or digit ``char`` that fold back to it."""
    return _homoglyph_table().get(char, ())
