"""The DCT's page map (``hal/dct.py``): it reads exactly as a flat 0xFF image written in place,
and devices that write the same page hold one copy of it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.hal import DCT_SIZE, FIELDS, Dct, MemoryDctBackend

# binary data, and runs of 0xFF that erase pages again
_WRITES = st.lists(st.tuples(st.integers(0, DCT_SIZE - 1),
                             st.binary(max_size=300) | st.integers(1, 400).map(
                                 lambda n: b"\xff" * n)),
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
    # the map holds each written page once, in index order, and no page that reads as erased
    indexes = list(dct._pages._indexes)
    assert indexes == sorted(set(indexes)) and len(indexes) == len(dct._pages._pages)
    for index, page in zip(indexes, dct._pages._pages, strict=True):
        assert page != b"\xff" * len(page)
        assert page == bytes(model[index * 128:index * 128 + len(page)])


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
