"""Text as the safety rules read it: people in distress type fast ("cant breth", "chset
pian", "unconcious"), and a rule written for the right word must still see it.

``Normaliser`` spells contractions out (so negation cues and "cannot" have one form each)
and corrects misspellings of a rule file's vocabulary: a token that is not an English
word and lies within one edit (two for long words) of exactly one vocabulary word becomes
that word. Real words are never "corrected" ("breast" stays, though it is one letter from
"breath"); pyspellchecker's frequency list says what is a word."""
from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Iterable

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_CONTRACTIONS = [
    (re.compile(r"\b(can'?t|can not|cannot)\b", re.I), "cannot"),
    (re.compile(r"\bwon'?t\b", re.I), "will not"),
    (re.compile(r"\b(do|does|did|is|are|was|were|has|have|had|could|would|should|must|need)n'?t\b", re.I), r"\1 not"),
    (re.compile(r"\bi'?m\b", re.I), "i am"),
    (re.compile(r"\bi'?ve\b", re.I), "i have"),
]
_WORD = re.compile(r"[a-z]+")
MIN_LENGTH = 4  # shorter tokens are too close to too many words to correct safely


class Normaliser:
    def __init__(self, vocabulary: Iterable[str] = ()):
        self.vocabulary = frozenset(w.lower() for w in vocabulary)

    def __call__(self, text: str) -> str:
        text = text.translate(_APOSTROPHES).lower()
        for pattern, replacement in _CONTRACTIONS:
            text = pattern.sub(replacement, text)
        if not self.vocabulary:
            return text
        return _WORD.sub(lambda m: self.correct(m.group(0)), text)

    def correct(self, word: str) -> str:
        if len(word) < MIN_LENGTH or word in self.vocabulary or _is_word(word):
            return word
        return _nearest(word, self.vocabulary) or word


@lru_cache(maxsize=65536)
def _nearest(word: str, vocabulary: frozenset[str]) -> str | None:
    limit = 1 if len(word) < 8 else 2
    close = [v for v in vocabulary if abs(len(v) - len(word)) <= limit and distance(word, v, limit) <= limit]
    return close[0] if len(close) == 1 else None  # two candidates: no guess


def distance(a: str, b: str, limit: int) -> int:
    """Edit distance with adjacent transpositions (optimal string alignment); anything
    over ``limit`` is reported as ``limit + 1``."""
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if prev2 is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[-1], limit + 1)


@cache
def _dictionary():
    from spellchecker import SpellChecker

    return SpellChecker(distance=1)


def _is_word(word: str) -> bool:
    return bool(_dictionary().known([word]))
