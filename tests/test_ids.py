"""`new_id`: a prefix, 10 digits of milliseconds and 16 of a random part that grows within one millisecond."""

from __future__ import annotations

import random
import time

import pytest

from backend import ids


def digits(value: int, length: int) -> str:
    """The low 5 * length bits of `value` in ids' base32, most significant first (the definition)."""
    return "".join(ids._ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(length)))


@pytest.mark.parametrize("seed", range(5))
def test_an_id_is_its_milliseconds_then_its_random_part_in_base32(monkeypatch, seed):
    rng = random.Random(seed)
    for _ in range(2000):
        ms = rng.getrandbits(rng.choice([41, 48, 50, 52]))  # 52 bits: only the low 50 are kept
        rand = rng.getrandbits(rng.choice([1, 40, 79, 80, 81]))
        monkeypatch.setattr(ids, "_last_ms", ms)
        monkeypatch.setattr(ids, "_last_rand", rand - 1)
        monkeypatch.setattr(time, "time_ns", lambda: 0)  # not later than the last: same ms, rand + 1
        assert ids.new_id("x") == "x_" + digits(ms, 10) + digits(rand, 16)
        assert ids._encode(ms, 10) + ids._encode(rand, 16) == digits(ms, 10) + digits(rand, 16)


def test_ids_made_one_after_another_sort_in_that_order():
    made = [ids.new_id("aud") for _ in range(5000)]
    assert sorted(made) == made and len(set(made)) == len(made)
    assert all(len(i) == 30 and set(i[4:]) <= set(ids._ALPHABET) for i in made)
