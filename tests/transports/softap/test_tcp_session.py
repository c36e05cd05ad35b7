"""The raw TCP protocol's connection handling: framing quirks, bad input, timeouts, concurrency."""

from __future__ import annotations

import json
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from transports.softap import SoftApOptions, encode_request

from .conftest import Photon, Probe, make_photon

SET_BODY = b'{"k":"cc","v":"CODE123"}'


def test_reply_then_close_and_trace(photon: Photon) -> None:
    probe = photon.tcp(b"device-id\n0\n\n")
    assert probe.closed and probe.output.startswith(b'\n\n{"id":"')
    kinds = [r.kind for r in photon.world.trace.find(layer="softap")
             if r.kind.startswith("softap.") and r.kind not in ("softap.device_key",
                                                                "softap.start")]
    assert kinds == ["softap.connection", "softap.command", "softap.reply", "softap.closed"]


def test_bytes_arriving_one_at_a_time(photon: Photon) -> None:
    probe = Probe()
    session = photon.softap.open_tcp(probe.send, probe.close)
    assert session is not None
    for byte in encode_request("set", SET_BODY):
        assert not probe.closed
        session.data_received(bytes([byte]))
    photon.world.run_for(0.1)
    assert bytes(probe.output) == b'\n\n{"r":0}' and probe.closed
    assert photon.device.claim.pending_code() == "CODE123"


def test_oversize_command_name(photon: Photon) -> None:
    probe = photon.tcp(b"x" * 31 + b"\n0\n\n")
    assert probe.closed and probe.output == b""
    unknown = photon.world.trace.first("softap.unknown_command")
    assert unknown is not None and unknown.fields["name_overflow"] is True
    # a valid name padded past 30 characters is not that command either
    probe = photon.tcp(b"version" + b" " * 30 + b"\n0\n\n")
    assert probe.closed and probe.output == b""


def test_unknown_command_and_antenna_commands(photon: Photon) -> None:
    for name in (b"reboot", b"VERSION", b""):
        probe = photon.tcp(name + b"\n0\n\n")
        assert probe.closed and probe.output == b""
    for name, antenna in ((b"ant-internal", "internal"), (b"ant-external", "external")):
        probe = photon.tcp(name + b"\n0\n\n")
        assert probe.closed and probe.output == b""
        assert photon.world.trace.find("softap.antenna")[-1].fields["antenna"] == antenna


def test_length_shorter_than_the_body(photon: Photon) -> None:
    probe = photon.tcp(b"set\n10\n\n" + SET_BODY)
    assert bytes(probe.output) == b"\n\n" and probe.closed  # truncated JSON: no answer
    assert photon.device.claim.pending_code() is None


def test_length_longer_than_the_body_times_out(photon: Photon) -> None:
    timeout = photon.softap.options.request_timeout_s
    probe = photon.tcp(b"set\n40\n\n" + SET_BODY, run_s=timeout - 0.5)
    assert bytes(probe.output) == b"\n\n" and not probe.closed  # still waiting for the body
    photon.world.run_for(1)
    assert probe.closed and bytes(probe.output) == b"\n\n"
    assert photon.world.trace.first("softap.timeout") is not None
    assert photon.device.claim.pending_code() is None
    assert photon.reply("version") == {"v": 2}  # the server keeps serving


def test_longer_length_on_a_command_without_body_answers_at_once(photon: Photon) -> None:
    probe = photon.tcp(b"version\n500\n\n", run_s=0.01)
    assert bytes(probe.output) == b'\n\n{"v":2}' and probe.closed


def test_length_not_a_number(photon: Photon) -> None:
    # "ab" -> 49*10 + 50 = 540 bytes expected: the 24 sent never complete it
    probe = photon.tcp(b"set\nab\n\n" + SET_BODY, run_s=11)
    assert probe.closed and bytes(probe.output) == b"\n\n"
    # "-1" -> (45-48)*10 + 1 = -29: negative, the device's malloc fails at once
    probe = photon.tcp(b"set\n-1\n\n" + SET_BODY, run_s=0.01)
    assert probe.closed and bytes(probe.output) == b"\n\n"
    assert photon.device.claim.pending_code() is None


def test_oversize_body(photon_factory: Callable[..., Photon]) -> None:
    photon = photon_factory(options=SoftApOptions(max_body_bytes=1024))
    body = json.dumps({"k": "cc", "v": "x" * 2000}).encode()
    probe = photon.tcp(encode_request("set", body), run_s=0.01)
    assert probe.closed and bytes(probe.output) == b"\n\n"
    assert photon.world.trace.first("softap.body_not_fetched") is not None
    probe = photon.tcp(b"set\n99999999\n\n", run_s=0.01)
    assert probe.closed and bytes(probe.output) == b"\n\n"


def test_oversize_header(photon: Photon) -> None:
    probe = photon.tcp(b"set\n" + b"1" * 500)
    assert probe.closed and probe.output == b""
    assert photon.world.trace.first("softap.bad_request") is not None


def test_client_that_sends_nothing(photon: Photon) -> None:
    timeout = photon.softap.options.request_timeout_s
    silent = photon.tcp(b"", run_s=timeout - 1)
    assert not silent.closed
    served = photon.tcp(b"version\n0\n\n", run_s=0.1)  # others are served meanwhile
    assert bytes(served.output) == b'\n\n{"v":2}'
    photon.world.run_for(1.5)
    assert silent.closed and silent.output == b""
    assert photon.softap.open_sessions == 0


def test_client_closing_early(photon: Photon) -> None:
    probe = Probe()
    session = photon.softap.open_tcp(probe.send, probe.close)
    assert session is not None
    session.data_received(b"set\n24\n\n{\"k\":")
    session.eof_received()
    assert probe.closed and bytes(probe.output) == b"\n\n"
    probe = Probe()
    session = photon.softap.open_tcp(probe.send, probe.close)
    assert session is not None
    session.connection_lost()
    assert photon.softap.open_sessions == 0


def test_client_leaving_during_a_scan(photon: Photon) -> None:
    probe = Probe()
    session = photon.softap.open_tcp(probe.send, probe.close)
    assert session is not None
    session.data_received(b"scan-ap\n0\n\n")
    session.connection_lost()
    photon.world.run_for(2)  # the scan result has nowhere to go: no error
    assert probe.output == b"\n\n"


def test_concurrent_clients_interleaved(photon: Photon) -> None:
    names = ["version", "device-id", "public-key", "scan-ap", "set"]
    probes = [Probe() for _ in names]
    sessions = [photon.softap.open_tcp(p.send, p.close) for p in probes]
    requests = [encode_request(n, SET_BODY if n == "set" else None) for n in names]
    for position in range(max(map(len, requests))):  # one byte of each client in turn
        for session, request in zip(sessions, requests, strict=True):
            if position < len(request):
                assert session is not None
                session.data_received(request[position:position + 1])
    photon.world.run_for(2)
    replies = [json.loads(p.output[2:]) for p in probes]
    assert all(p.closed for p in probes)
    assert replies[0] == {"v": 2}
    assert replies[1]["id"] == photon.device.device_id.upper()
    assert replies[2]["r"] == 0 and len(replies[2]["b"]) == 588
    assert [s["ssid"] for s in replies[3]["scans"]] == ["HomeNet", "OpenCafe", "OldWep"]
    assert replies[4] == {"r": 0}


def test_same_seed_same_trace() -> None:
    def run() -> list[str]:
        photon = make_photon(seed=11)
        photon.command("version")
        photon.command("public-key")
        photon.command("set", SET_BODY)
        photon.command("scan-ap")
        return [r.to_json() for r in photon.world.trace.records]

    assert run() == run()


@settings(max_examples=120, deadline=None)
@given(st.binary(max_size=200), st.integers(1, 64))
def test_arbitrary_bytes_never_break_the_server(data: bytes, chunk: int) -> None:
    photon = make_photon(seed=3)
    probe = Probe()
    session = photon.softap.open_tcp(probe.send, probe.close)
    assert session is not None
    for start in range(0, len(data), chunk):
        if probe.closed:
            break
        session.data_received(data[start:start + chunk])
    photon.world.run_for(photon.softap.options.request_timeout_s + 2)
    assert probe.closed
    assert probe.output == b"" or probe.output.startswith(b"\n\n")
    assert photon.softap.open_sessions == 0
    assert photon.reply("version") == {"v": 2}
