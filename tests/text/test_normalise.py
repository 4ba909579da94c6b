import polars as pl

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
