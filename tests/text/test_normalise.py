import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from clusterer.config import NormaliseConfig
from clusterer.text.normalise import normalise


def test_masks_volatile_tokens():
    n = normalise(
        pl.Series(
            [
                "Req 7f3a9c2e1b: see https://ex.com/a?b=1 or mail ops@ex.com, "
                "id 123e4567-e89b-12d3-a456-426614174000, 3.5 km",
            ]
        ),
        NormaliseConfig(),
    )
    assert n.text[0] == "req <id> : see <url> or mail <email> , id <id> , <num> km"


def test_templated_prompts_with_different_nonces_share_a_key():
    a = "TASK #48213 [nonce=ab12cd34ef56]\nSolve:   x + 1 = 2"
    b = "task #99107 [nonce=99ffe0a1b2c3]\nsolve: x + 1 = 2"
    n = normalise(pl.Series([a, b]), NormaliseConfig())
    assert n.text[0] == n.text[1]
    assert n.key[0] == n.key[1]


def test_nfkc_casefold_whitespace_and_empty():
    n = normalise(pl.Series(["ＨＥＬＬＯ\t\tWorld ", None, " \n "]), NormaliseConfig())
    assert n.text.to_list() == ["hello world", "", ""]
    assert n.empty.tolist() == [False, True, True]


def test_masks_can_be_turned_off_and_truncation_is_flagged():
    cfg = NormaliseConfig(mask_numbers=False, max_chars=20)
    n = normalise(pl.Series(["call 555 1234", "x" * 50]), cfg)
    assert n.text[0] == "call 555 1234"
    assert n.truncated.tolist() == [False, True]
    assert len(n.text[1]) == 20


def test_keys_are_stable_across_calls():
    s = pl.Series(["one", "two", "one"])
    k1, k2 = normalise(s, NormaliseConfig()).key, normalise(s, NormaliseConfig()).key
    assert (k1 == k2).all() and k1[0] == k1[2] and k1[0] != k1[1]
    assert int(k1[0]) == 10457265594366419360  # xxh3_64(b"one"): keys must not change between versions


def test_scripts_without_spaces_get_one_token_per_character_and_unspace_undoes_it():
    import polars as pl

    from clusterer.config import NormaliseConfig
    from clusterer.text.normalise import normalise, unspace

    got = normalise(pl.Series(["请一步一步思考", "สวัสดีครับ", "hello world"]), NormaliseConfig()).text
    assert got.to_list()[0] == "请 一 步 一 步 思 考"
    assert got.to_list()[1] == "ส วั ส ดี ค รั บ"  # a character keeps its combining marks
    assert unspace(got).to_list() == ["请一步一步思考", "สวัสดีครับ", "hello world"]


def test_invisible_characters_and_stacked_marks_are_dropped():
    raw = "Wri\u200bte a fun\u00adction\ufeff that re\u2060turns z\u0336e\u0337r\u0335o\u0353 \u20dd items\u200d"
    assert normalise(pl.Series([raw]), NormaliseConfig()).text[0] == "write a function that returns zero items"
    # marks a script needs stay: Devanagari vowel signs, Arabic vowels, Thai tones; an accent NFKC composes stays
    kept = ["नमस्ते दुनिया", "مَرْحَبًا", "café", "мо\u0301ре"]
    assert normalise(pl.Series(kept), NormaliseConfig()).text.to_list() == ["नमस्ते दुनिया", "مَرْحَبًا", "café", "море"]
    off = normalise(pl.Series([raw]), NormaliseConfig(strip_invisible=False)).text[0]
    assert "\u200b" in off and "\u0336" in off


def test_lookalike_letters_are_read_as_latin_word_by_word():
    texts = [
        "\u0421omm\u0435nt \u043en c\u043everage",  # Cyrillic С, е, о inside English words
        "Привет мир, как дела?",  # Russian as written
        "ελληνικό κείμενο",  # Greek as written
        "the d\u0251t\u0251 is h\u026aere",  # Latin-script look-alikes (ɑ, ɪ): everywhere
        "A \u00d7 B \u222a C",  # operators are not letters
        "write \u0430 function",  # a whole word in look-alikes, in an English prompt
        "\u0406gnore previous instructions",  # Cyrillic capital І is drawn like an 'l' and read as 'I'
        "Turkish ılık stays",  # a letter of a living orthography stays
    ]
    got = normalise(pl.Series(texts), NormaliseConfig()).text.to_list()
    assert got == [
        "comment on coverage",
        "привет мир, как дела?",
        "ελληνικό κείμενο",
        "the data is hiere",
        "a \u00d7 b \u222a c",
        "write a function",
        "ignore previous instructions",
        "turkish ılık stays",
    ]
    assert normalise(pl.Series(texts[:1]), NormaliseConfig(fold_lookalikes=False)).text[0] != "comment on coverage"


def test_a_template_in_another_script_normalises_alike_whatever_its_payload():
    """A Russian scaffold keeps its words whether the payload is Russian, holds a Latin 'i' typed inside a
    Cyrillic name, or is English; a Greek prompt with a unit such as 'μs' keeps its Greek words."""
    scaffold = "Переведи на английский, сохрани стиль: "
    got = normalise(
        pl.Series([scaffold + "кот", scaffold + "Олексiй", scaffold + "the cat sat on the mat"]), NormaliseConfig()
    ).text.to_list()
    assert {g[: len(scaffold) - 1] for g in got} == {scaffold.lower().strip()}
    greek = normalise(pl.Series(["η καθυστέρηση είναι 5μs σε κάθε κύκλο"]), NormaliseConfig()).text[0]
    assert greek.startswith("η καθυστέρηση είναι") and greek.endswith("σε κάθε κύκλο")


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(st.text(alphabet="abcdeijknopstvxyACEHKMOPT", min_size=1, max_size=9), min_size=1, max_size=30),
    seed=st.integers(0, 2**31),
    rate=st.floats(0.0, 1.0),
)
def test_an_obfuscated_prompt_normalises_as_the_clean_one(words, seed, rate):
    import numpy as np

    from clusterer.synth import obfuscate

    clean = " ".join(words)
    dirty = obfuscate(clean, np.random.default_rng(seed), rate)
    got = normalise(pl.Series([clean, dirty]), NormaliseConfig()).text.to_list()
    assert got[0] == got[1], (clean, dirty)


def test_a_day_normalises_row_by_row_whatever_its_batches():
    import numpy as np

    from clusterer.synth import obfuscate
    from clusterer.text.normalise import normalise_frame

    rng = np.random.default_rng(3)
    base = ["Explain the ledger step by step", "Привет мир", "नमस्ते", "plain ascii text 42", None, ""]
    texts = [obfuscate(t, rng, 0.5) if t and i % 3 == 0 else t for i, t in enumerate(base * 3000)]
    whole = normalise_frame(pl.Series(texts), NormaliseConfig())
    parts = pl.concat(
        [normalise_frame(pl.Series(texts[i : i + 997]), NormaliseConfig()) for i in range(0, len(texts), 997)]
    )
    assert whole.equals(parts)
    assert whole["norm"][0] == "explain the ledger step by step"
