"""Whose books a question is about. Every reference to a person or an account (names in
any case, possessives, first names, full names, logins, client and account ids) is resolved
against what the principal may see: the clients and accounts row-level security shows
them, then, for what they may not see, the firm's yes/no lookup
(``finance_reference_known``, migration 0003), which says whether a reference is known
and returns nothing else."""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field

from . import portfolio as pf

# Words that name no one, even capitalised at a sentence's start or before "'s".
_NOT_NAMES = {m.lower() for m in calendar.month_name[1:] + calendar.day_name[:]} | set(
    "i me my mine myself we us our ours you your yours he him his she her hers it its they them their theirs "
    "what whats which who whom whose when where why how that this these those there here let lets "
    "today yesterday tomorrow day week month quarter year ytd "
    "portfolio account accounts fund funds market markets company firm bank ira roth etf usd "
    "client clients customer customers advisor adviser partner wife husband spouse son daughter mother father "
    "mom dad parent parents friend friends brother sister family boss neighbour neighbor colleague "
    "is are am was were be do does did can could would should shall might must has have had mr mrs ms miss dr mx "
    "show give tell list display calculate compute compare check get please hi hello thanks".split())
# Everyday words a first or last name can also be ("will", "mark", "price", "bond"): in lower
# case they count as a name only before "'s" or after a title.
_EVERYDAY = set(
    "a an the and or but if of in on at to for from by with about as into over under than then so not no "
    "all any each every some more most less least much many few other others own same such only also just "
    "will may can mark bill grant rich penny price bond bonds cash stock stocks gold share shares value worth "
    "hold holds holding holdings own owns return returns gain gains loss losses cost basis rate total "
    "allocation sector sectors mix breakdown position positions investment investments balance money "
    "rebalance rebalancing target targets large largest big biggest long short last past since new old "
    "up down out off again now still well good best better high low".split())
# Someone besides the asker, not by name ("every client's", "other people", "my wife's").
_OTHERS = re.compile(r"\b(?:(?:every|each|all|any|other|another|my|our|a|the)\s+(?:of\s+(?:the|your|my)\s+)?"
                     r"(?:clients?|customers?|users?|people|persons?|investors?|members?|partner|wife|husband|spouse|"
                     r"son|daughter|mother|father|mom|dad|parents?|friends?|brother|sister|family|boss|colleague)|"
                     r"everyone|everybody|(?:anyone|someone|somebody|anybody)\s+else|others)\b", re.I)
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*(?:'s\b|(?<=s)'(?!\w))?")
_TITLE = re.compile(r"\b(?:mr|mrs|ms|miss|dr|mx)\.?\s+$", re.I)
_AFTER_ID_WORD = re.compile(r"\b(?:account|acct|client)s?(?:\s+(?:id|number|no\.?))?\s*[:#]?\s*$", re.I)
_SENTENCE_START = re.compile(r"(?:^|[.!?;:\n(])\s*$")
# Where an unknown capitalised word reads as a person: "does Zed hold", "Zed owns".
_PERSON_BEFORE = re.compile(r"\b(?:does|did|do|has|is|was|can|could|will|would|should)\s+$", re.I)
_PERSON_AFTER = re.compile(r"^\s+(?:holds?|held|owns?|owned|has|had|have|invest(?:s|ed)?|bought|sold)\b", re.I)


@dataclass
class Word:
    text: str             # as typed, without a possessive ending
    start: int
    possessive: bool
    sentence_start: bool
    title: str            # "Ms" in "Ms Park"
    after_id_word: bool   # "account X", "client id X"
    person_slot: bool     # "does X hold", "X owns"

    @property
    def id_like(self) -> bool:
        """Shaped like an account or client id: letters with digits or hyphens; or any
        upper-case or numeric word right after "account" / "client"."""
        mixed = re.search(r"[A-Za-z]", self.text) and re.search(r"[\d-]", self.text)
        return bool(mixed or self.after_id_word and (self.text.isupper() or self.text.isdigit()))

    @property
    def name_like(self) -> bool:
        """Said the way people name someone: an owner ("zed's"), after a title, or
        capitalised (not an acronym) where a person goes ("does Zed hold")."""
        capitalised = self.text[:1].isupper() and not self.text.isupper()
        return self.possessive or bool(self.title) or capitalised and self.person_slot

    @property
    def said(self) -> str:
        return f"{self.title}{self.text}"


def words(question: str) -> list[Word]:
    text = question.replace("\u2019", "'")
    out = []
    for m in _TOKEN.finditer(text):
        raw, before = m.group(0), text[:m.start()]
        title = _TITLE.search(before)
        bare = raw[:-2] if raw.endswith("'s") else raw.rstrip("'")
        out.append(Word(bare, m.start(), bare != raw, bool(_SENTENCE_START.search(before)),
                        title.group(0) if title else "", bool(_AFTER_ID_WORD.search(before)),
                        bool(_PERSON_BEFORE.search(before) or _PERSON_AFTER.search(text[m.end():]))))
    return out


def _name_candidate(w: Word) -> bool:
    """Could this word be (part of) someone's name? Names are looked up in any case;
    everyday words only where they read as a name."""
    low = w.text.lower()
    if w.id_like or not w.text.isalpha() or low in _NOT_NAMES:
        return False
    return low not in _EVERYDAY or w.name_like or w.text[:1].isupper() and not w.sentence_start


@dataclass
class Resolution:
    """What a question refers to. ``refused``: what the principal may not see, as typed and
    ready to say ("bob's", "account A-BOB-TAX"; a name nobody has reads the same, so the
    answer says nothing about who exists); ``unknown``: an account or client id nobody has;
    ``others``: "every client", "other people"."""

    clients: list[pf.Client] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    refused: str | None = None
    unknown: str | None = None
    others: str | None = None


class Resolver:
    """Resolves a question's references for one principal."""

    def __init__(self, db, principal: str):
        self.db, self.principal = db, principal
        self.visible = pf.visible_clients(db, principal)
        with db.session(principal) as conn:
            self.accounts = {a.upper(): (a, c) for a, c in conn.execute("SELECT account_id, client_id FROM accounts")}
            # Security names and tickers said like names ("Northwind's", "TUSM's") are no one.
            self.security_words = {w.lower() for row in conn.execute("SELECT symbol, coalesce(name, '') FROM securities")
                                   for w in re.findall(r"[A-Za-z0-9-]+", " ".join(row))}

    def known(self, kind: str, refs: list[str]) -> set[str]:
        """Which of ``refs`` the firm knows as ``kind`` (name, self, account, client): one yes/no each."""
        if not refs:
            return set()
        with self.db.session(self.principal) as conn:
            rows = conn.execute("SELECT r, finance_reference_known(%s, r) FROM unnest(%s::text[]) r",
                                (kind, sorted(set(refs)))).fetchall()
        return {r for r, yes in rows if yes}

    def resolve(self, question: str) -> Resolution:
        out = Resolution()
        ws = words(question)
        self._ids(ws, out)
        self._names(ws, out)
        others = _OTHERS.search(question)
        out.others = others.group(0) if others else None
        return out

    def _ids(self, ws: list[Word], out: Resolution) -> None:
        by_client = {c.client_id.upper(): c for c in self.visible}
        ids = [w for w in ws if w.id_like]
        accounts, clients = self.known("account", [w.text for w in ids]), self.known("client", [w.text for w in ids])
        for w in ids:
            key = w.text.upper()
            if key in self.accounts:
                account, client = self.accounts[key]
                out.accounts.append(account)
                out.clients += [by_client[client.upper()]] if by_client[client.upper()] not in out.clients else []
            elif key in by_client:
                out.clients += [by_client[key]] if by_client[key] not in out.clients else []
            elif w.text in accounts or w.text in clients:
                out.refused = out.refused or f"{'account' if w.text in accounts else 'client'} {key}"
            elif w.after_id_word:
                out.unknown = out.unknown or key

    def _names(self, ws: list[Word], out: Resolution) -> None:
        """Full names first ("bob diaz's"), then single words."""
        pairs = [(a, b) for a, b in zip(ws, ws[1:]) if _name_candidate(a) and not a.possessive and b.text.isalpha()]
        said = [f"{a.text} {b.text}" for a, b in pairs]
        known, me = self.known("name", said), self.known("self", said)
        used: set[int] = set()
        for (a, b), full in zip(pairs, said):
            if _visible(full, self.visible) or full in known:
                used |= {a.start, b.start}
                self._name(full, full in me, out, full)
        singles = [w for w in ws if w.start not in used and _name_candidate(w)]
        known, me = self.known("name", [w.text for w in singles]), self.known("self", [w.text for w in singles])
        for w in singles:
            stranger = w.name_like and w.text.lower() not in self.security_words
            if _visible(w.text, self.visible) or w.text in known or stranger:
                self._name(w.text, w.text in me, out, w.said)

    def _name(self, name: str, is_self: bool, out: Resolution, said: str) -> None:
        found = _visible(name, self.visible)
        if found:
            out.clients += [c for c in found if c not in out.clients]
        elif not is_self:
            # Said back as typed: the same words for a client and a stranger.
            out.refused = out.refused or possessive(said)


def _visible(phrase: str, visible: list[pf.Client]) -> list[pf.Client]:
    """The visible clients a name or login denotes (full, first or last name)."""
    low = phrase.lower()
    return [c for c in visible if low in {c.name.lower(), (c.principal or "").lower(),
                                          c.name.split()[0].lower(), c.name.split()[-1].lower()}]


def possessive(name: str) -> str:
    """The owner form of a name as said: "Bob" -> "Bob's", "bob diaz" -> "bob diaz's"
    ('s after a final s too: "James's")."""
    return f"{name}'s"
