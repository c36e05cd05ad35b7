"""Property tests of the device channel: hostile streams never break it, honest ones always work.

* Any bytes, in any chunking, before or after the handshake: the world never raises, the
  device keeps running, the connection either stays (waiting for more) or is dropped, and a
  new connection then provisions normally.
* An honest client with any MTU and any chunking gets every echo back, whatever the order in
  which requests and replies cross.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_requests.types import RequestType

from .conftest import make_rig

_SETTINGS = settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(chunks=st.lists(st.binary(min_size=1, max_size=244), min_size=1, max_size=8),
       after_handshake=st.booleans(), subscribe=st.booleans(),
       response=st.booleans())
def test_hostile_bytes_never_break_the_device(chunks: list[bytes], after_handshake: bool,
                                              subscribe: bool, response: bool) -> None:
    rig = make_rig()
    central = rig.central()
    central.connect()
    central.exchange_mtu(247)
    if subscribe or after_handshake:
        central.subscribe()
    if after_handshake:
        assert central.handshake()
    for chunk in chunks:
        if central.disconnected is not None:
            break
        central.write_stream(chunk, response=response)
        rig.run(0.05)
    rig.run(1.0)
    assert rig.device.running
    channel = rig.peripheral.channel
    assert channel is not None
    if central.disconnected is None:
        central.disconnect()
    rig.run(0.5)
    fresh = rig.central("fresh")
    assert fresh.open_session()
    assert fresh.request(RequestType.ECHO, b"ok") == (0, b"ok")


@_SETTINGS
@given(mtu=st.integers(min_value=23, max_value=300),
       payloads=st.lists(st.binary(max_size=600), min_size=1, max_size=4),
       response=st.booleans())
def test_honest_sessions_work_for_any_mtu(mtu: int, payloads: list[bytes],
                                          response: bool) -> None:
    rig = make_rig(mtu)
    central = rig.central()
    central.connect()
    central.exchange_mtu(mtu)
    central.subscribe()
    assert central.handshake()
    assert central.channel is not None
    sent = []
    for payload in payloads:
        request_id, frame = central.channel.request(RequestType.ECHO, payload)
        sent.append((request_id, payload))
        central.write_stream(frame, response=response)
        rig.run(0.2)  # a burst without responses must fit the 1024-byte pool
    rig.run(2.0)
    if not response and any(len(p) + 16 > 1024 for p in payloads):
        return  # an unpaced burst over the pool is refused (tested elsewhere)
    assert sorted((rid, data) for rid, _result, data in central.replies) == sorted(sent)
