"""The DCT's page map (``hal/dct.py``): it reads exactly as a flat 0xFF image written in place,
and devices that write the same page hold one copy of it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.hal import DCT_SIZE, FIELDS, Dct, MemoryDctBackend

_WRITES = st.lists(st.tuples(st.integers(0, DCT_SIZE - 1), st.binary(max_size=300)),
                   max_size=20)


@given(_WRITES, st.integers(0, DCT_SIZE - 1), st.integers(0, 400))
def test_the_paged_image_reads_as_a_flat_image(writes: list[tuple[int, bytes]], offset: int,
                                               size: int) -> None:
    dct = Dct(MemoryDctBackend())
    model = bytearray(b"\xff" * DCT_SIZE)
    for at, data in writes:
        data = data[:DCT_SIZE - at]
        dct.write(at, data)
        model[at:at + len(data)] = data
    size = min(size, DCT_SIZE - offset)
    assert dct.image() == bytes(model)
    assert dct.read(offset, size) == bytes(model[offset:offset + size])
    assert Dct(dct.backend).image() == bytes(model)  # reopened from the committed pages


def test_devices_writing_the_same_page_share_it_and_stay_independent() -> None:
    key = bytes(range(192))
    first, second = Dct(MemoryDctBackend()), Dct(MemoryDctBackend())
    for dct in (first, second):
        dct.write_field("alt_server_public_key", key)
    inside = FIELDS["alt_server_public_key"].offset // 128 + 1  # a page wholly in the field
    assert first._pages.get(inside, b"") is second._pages.get(inside, b"")
    second.write_field("alt_server_public_key", bytes(192))
    assert first.read_field("alt_server_public_key") == key
    assert second.read_field("alt_server_public_key") == bytes(192)
