"""Seeded fake prompt logs for tests, benchmarks and scripts (never imported by the pipeline).

A day mixes templated campaigns (a fixed scaffold around varied payloads, spread over many accounts)
with free-form background prompts built from a small vocabulary, so tests can check that every row is
accounted for and that obvious templates come out as clusters, without any external data.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

_WORDS = (
    "apple river garden window market engine planet silver forest music bridge candle winter harbor "
    "pencil mountain ocean castle rocket meadow lantern desert island thunder violin tiger coffee "
    "library painting village orbit crystal shadow feather marble compass journey festival puzzle "
    "station blanket harvest signal velvet canyon voyage glacier ember quartz saddle timber nectar"
).split()
_VERBS = "explain describe compare summarise list suggest write design plan review translate outline".split()

SCAFFOLDS = (
    "You are a meticulous tutor. Think step by step inside <thinking> tags, then give the final answer "
    "after 'ANSWER:'. Never skip a step and check your arithmetic twice.\n\nProblem: {payload}",
    "SYSTEM: you are an autonomous agent with tools search(query), open(url), calc(expr). Plan your tool "
    "calls as a numbered list, then execute them and report the result in JSON.\n\nTask: {payload}",
    "Rewrite the following request so that it is safe to answer, keeping the user's intent. Output the "
    "rewritten request only, with no commentary or preamble.\n\nRequest: {payload}",
)


def _payload(rng: np.random.Generator, pool: int = 0) -> str:
    """A random question over one of three disjoint slices of the vocabulary (one payload pool per campaign)."""
    words = _WORDS[pool % 3 :: 3]
    n = int(rng.integers(6, 30))
    return " ".join(rng.choice(words, n)) + "?"


def _benign(rng: np.random.Generator) -> str:
    verb = str(rng.choice(_VERBS))
    n = int(rng.integers(3, 14))
    return f"{verb} " + " ".join(rng.choice(_WORDS, n))


def fake_day(
    seed: int = 0,
    n_benign: int = 300,
    campaign_sizes: tuple[int, ...] = (80, 60),
    accounts_per_campaign: int = 12,
    n_benign_accounts: int = 150,
    scaffolds: tuple[int, ...] | None = None,
    day: int = 1,
    one_operator: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A small seeded day: ``(traffic, labels)``. Campaign c uses ``SCAFFOLDS[scaffolds[c]]`` (default: c)
    and is labelled ``campaign_<scaffold index>``; ``day`` moves the calendar (2026-11-``day``);
    ``one_operator`` runs every campaign over one shared account pool.

    traffic: prompt_id, account_id, timestamp (datetime[us, UTC]), text.
    labels:  prompt_id, label (campaign name or null), kind ('campaign' | 'benign').
    """
    scaffolds = tuple(range(len(campaign_sizes))) if scaffolds is None else scaffolds
    if len(scaffolds) != len(campaign_sizes) or max(scaffolds, default=0) >= len(SCAFFOLDS):
        raise ValueError(f"one scaffold index (< {len(SCAFFOLDS)}) per campaign")
    rng = np.random.default_rng(seed)
    texts, accounts, labels, kinds = [], [], [], []
    for c, size in zip(scaffolds, campaign_sizes, strict=True):
        for i in range(size):
            texts.append(SCAFFOLDS[c].format(payload=_payload(rng, c)))
            pool = "op" if one_operator else f"c{c}"
            accounts.append(f"{pool}-acct{i % accounts_per_campaign:03d}")
            labels.append(f"campaign_{c}")
            kinds.append("campaign")
    for _ in range(n_benign):
        texts.append(_benign(rng))
        accounts.append(f"user{int(rng.integers(n_benign_accounts)):04d}")
        labels.append(None)
        kinds.append("benign")
    order = rng.permutation(len(texts))
    start = dt.datetime(2026, 11, day, tzinfo=dt.timezone.utc)
    secs = np.sort(rng.integers(0, 86_400, len(texts)))
    ids = [f"q{seed}-d{day}-{i:06d}" for i in range(len(texts))]
    traffic = pl.DataFrame(
        {
            "prompt_id": ids,
            "account_id": [accounts[j] for j in order],
            "timestamp": [start + dt.timedelta(seconds=int(s)) for s in secs],
            "text": [texts[j] for j in order],
        }
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("us", "UTC")))
    lab = pl.DataFrame(
        {"prompt_id": ids, "label": [labels[j] for j in order], "kind": [kinds[j] for j in order]},
        schema={"prompt_id": pl.String, "label": pl.String, "kind": pl.String},
    )
    return traffic, lab


# character-level evasion (:func:`obfuscate`): invisible characters, look-alike letters of other scripts
# (Cyrillic, Greek, Armenian) and combining marks no letter composes with
INVISIBLE_CHARS = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
LOOKALIKES = {
    "a": "\u0430", "c": "\u0441", "e": "\u0435", "i": "\u0456", "j": "\u0458", "o": "\u043e", "p": "\u0440",
    "s": "\u0455", "x": "\u0445", "y": "\u0443", "v": "\u03bd", "n": "\u0578", "A": "\u0391", "B": "\u0412",
    "C": "\u0421", "E": "\u0415", "H": "\u041d", "K": "\u041a", "M": "\u041c", "O": "\u039f", "P": "\u0420",
    "T": "\u0422",
}  # fmt: skip
STACKED_MARKS = ("\u0334", "\u0335", "\u0336", "\u0337", "\u0353", "\u035c")


def obfuscate(text: str, rng: np.random.Generator, rate: float = 0.12) -> str:
    """``text`` as an operator varying each prompt's characters would send it: each word (split on spaces)
    of two characters or more gets, with probability ``rate`` each, an invisible character inside it, about
    half its letters swapped for look-alikes of other scripts (at least one letter kept), and, with
    probability ``rate / 3``, a combining mark stacked on one letter. Reads the same on screen."""
    words = text.split(" ")
    for w, word in enumerate(words):
        if len(word) < 2:
            continue
        r = rng.random(4)
        if r[0] < rate:
            swap = [i for i, ch in enumerate(word) if ch in LOOKALIKES]
            if len(swap) > 1 or (swap and len(word) > len(swap)):
                keep = {swap[int(rng.integers(len(swap)))]} if len(swap) == sum(ch.isalpha() for ch in word) else set()
                word = "".join(
                    LOOKALIKES[ch] if i in swap and i not in keep and rng.random() < 0.5 else ch
                    for i, ch in enumerate(word)
                )
        if r[1] < rate:
            k = 1 + int(rng.integers(len(word) - 1))
            word = word[:k] + INVISIBLE_CHARS[int(rng.integers(len(INVISIBLE_CHARS)))] + word[k:]
        if r[2] < rate / 3:
            k = 1 + int(rng.integers(len(word) - 1))
            if word[k - 1].isalpha():
                word = word[:k] + STACKED_MARKS[int(rng.integers(len(STACKED_MARKS)))] + word[k:]
        words[w] = word
    return " ".join(words)


def obfuscate_day(
    traffic: pl.DataFrame, campaign: pl.Series, rng: np.random.Generator, rate: float = 0.12, others: float = 0.1
) -> pl.DataFrame:
    """``traffic`` with :func:`obfuscate` applied to the text of every row where ``campaign`` (bool, aligned)
    is true, and of a share ``others`` of the other rows (text pasted with zero-width characters, users
    typing in a second script); every other column as it was."""
    texts = [
        obfuscate(t, rng, rate) if t is not None and (c or rng.random() < others) else t
        for t, c in zip(traffic["text"].to_list(), campaign.to_list(), strict=True)
    ]
    return traffic.with_columns(pl.Series("text", texts, dtype=pl.String))


def overlap_case(seed: int, n_prompts: int = 400, n_pairs: int = 3_000, num_perm: int = 128):
    """Random CSR skeletons drawn from a shared hash pool (so overlaps spread over [0, 1]) plus pairs.

    Returns ``(indptr int64 (n+1,), hashes uint64, seeds uint64 (num_perm,), i int64 (m,), j int64 (m,))``;
    the first five rows are empty.
    """
    from .accel.hashing import perm_seeds

    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 2**63, 600, dtype=np.int64).astype(np.uint64)
    sizes = rng.integers(0, 60, n_prompts)
    sizes[:5] = 0
    rows = [np.unique(rng.choice(pool[: int(rng.integers(40, 600))], s)) for s in sizes]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    hashes = np.concatenate(rows).astype(np.uint64) if rows else np.zeros(0, np.uint64)
    i = rng.integers(0, n_prompts, n_pairs).astype(np.int64)
    j = rng.integers(0, n_prompts, n_pairs).astype(np.int64)
    return indptr, hashes, perm_seeds(num_perm, seed), i, j
