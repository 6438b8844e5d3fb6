"""Ids: a type prefix and a random, time-sortable part (`col_…`, `act_…`).

The part after the prefix is 26 characters of Crockford base32: 48 bits of
milliseconds since the epoch, then 80 bits that are random but grow
monotonically within one millisecond, so ids made by one process sort in the
order they were made.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)  # every 10-bit value as its two digits
_SHIFTS = tuple(range(120, -1, -10))  # the 13 pairs of an id's 26 digits (130 bits), first to last

_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            rand = _last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms, _last_rand = ms, rand
    # _encode(ms, 10) + _encode(rand, 16), two digits a step (a third of the time)
    value = (ms & 0x3FFFFFFFFFFFF) << 80 | (rand & 0xFFFFFFFFFFFFFFFFFFFF)
    pairs = _PAIRS
    return prefix + "_" + "".join([pairs[(value >> shift) & 1023] for shift in _SHIFTS])


def has_prefix(value: object, prefix: str) -> bool:
    return isinstance(value, str) and value.startswith(prefix + "_") and 4 <= len(value) <= 64
