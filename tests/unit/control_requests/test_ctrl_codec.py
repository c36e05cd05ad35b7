"""Codec: type_id registry, byte-exact vectors, nanopb decode rules, reply encoding."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from control_requests import codec, requests
from control_requests._pb import cloud_pb2, config_pb2, mesh_pb2, network_legacy_pb2, wifi_pb2
from control_requests.errors import BadData, ReplyEncodingFailed
from control_requests.nanopb_rules import canonicalize, field_limits
from control_requests.types import RequestType
from firmware_sim.kernel.errors import DeviceOsError, PeerProtocolError, ResultCode, UsageError

# particle-usb 4.1.0 / device-os-protobuf 2.9.0 wire bytes (spec device-os.md §3 and
# real-clients.md §4; the JoinNewNetwork ones were produced with particle-usb's own encoder,
# exactly as `particle wifi join` calls it).
CLAIM_CODE_PAYLOAD = bytes.fromhex("0a0b4d59434c41494d434f4445")
IS_CLAIMED_TRUE_REPLY = bytes.fromhex("0801")
CLI_JOIN_WPA2 = bytes.fromhex("0a054d794e65741803220d080112097365637265743132333000")
CLI_JOIN_OPEN = bytes.fromhex("0a074f70656e4e65741800")

NO_MESSAGE_TYPES = {
    RequestType.INVALID,
    RequestType.ECHO,
    RequestType.APP_CUSTOM,
    RequestType.FACTORY_RESET,
    RequestType.DFU_MODE,
    RequestType.SAFE_MODE,
    RequestType.LOG_CONFIG,
    RequestType.DIAGNOSTIC_INFO,
}


# -- registry -------------------------------------------------------------------------------


def test_every_other_type_has_messages() -> None:
    pairs = codec.message_pairs()
    assert set(RequestType) - set(pairs) == NO_MESSAGE_TYPES
    assert list(pairs) == sorted(pairs)


@pytest.mark.parametrize("request_type", sorted(codec.message_pairs()), ids=lambda t: t.name)
def test_pair_follows_naming_and_type_id(request_type: RequestType) -> None:
    pair = codec.message_pairs()[request_type]
    request_name = pair.request.DESCRIPTOR.full_name
    assert pair.request_type is request_type
    assert request_name.endswith("Request")
    assert pair.reply.DESCRIPTOR.full_name == request_name.removesuffix("Request") + "Reply"
    raw = codec.type_id_of(pair.request)
    if request_name in codec.TYPE_ID_CORRECTIONS:
        assert raw != request_type
    else:
        assert raw == request_type


def test_network_configuration_numbers_follow_device_os() -> None:
    # Particle's .proto swaps 120/121; Device OS and particle-usb's request.js do not.
    assert codec.request_class(120) is network_legacy_pb2.NetworkSetConfigurationRequest
    assert codec.request_class(121) is network_legacy_pb2.NetworkGetConfigurationRequest
    assert codec.type_id_of(network_legacy_pb2.NetworkSetConfigurationRequest) == 121


def test_spot_checks() -> None:
    assert codec.request_class(200) is config_pb2.SetClaimCodeRequest
    assert codec.reply_class(201) is config_pb2.IsClaimedReply
    assert codec.request_class(RequestType.CLOUD_CONNECT) is cloud_pb2.ConnectRequest
    assert codec.request_class(506) is wifi_pb2.ScanNetworksRequest
    assert codec.request_class(1011) is mesh_pb2.ScanNetworksRequest
    assert codec.request_class(112).DESCRIPTOR.full_name == "particle.ctrl.WiFiScanRequest"
    pair = codec.message_pair(RequestType.IS_CLAIMED)
    assert pair is not None and pair.request_is_empty
    assert not codec.message_pairs()[RequestType.SET_CLAIM_CODE].request_is_empty


@pytest.mark.parametrize("bad", [1, 41, 100, 9999, -5])
def test_types_without_messages_are_usage_errors(bad: int) -> None:
    assert codec.message_pair(bad) is None
    with pytest.raises(UsageError):
        codec.request_class(bad)
    with pytest.raises(UsageError):
        codec.decode_request(bad, b"")


# -- byte-exact vectors ----------------------------------------------------------------------


def test_set_claim_code_bytes() -> None:
    message = config_pb2.SetClaimCodeRequest(code="MYCLAIMCODE")
    assert codec.encode_request(message) == CLAIM_CODE_PAYLOAD
    assert requests.set_claim_code("MYCLAIMCODE").request == requests.EncodedRequest(
        RequestType.SET_CLAIM_CODE, CLAIM_CODE_PAYLOAD
    )
    assert codec.decode_request(RequestType.SET_CLAIM_CODE, CLAIM_CODE_PAYLOAD) == \
        codec.device_view(message)


def test_is_claimed_reply_bytes() -> None:
    assert codec.encode_reply(config_pb2.IsClaimedReply(claimed=True)) == IS_CLAIMED_TRUE_REPLY
    assert codec.encode_reply(config_pb2.IsClaimedReply(claimed=False)) == b""
    reply = codec.decode_reply(RequestType.IS_CLAIMED, IS_CLAIMED_TRUE_REPLY)
    assert isinstance(reply, config_pb2.IsClaimedReply) and reply.claimed
    assert requests.is_claimed().result((0, IS_CLAIMED_TRUE_REPLY)) is True
    assert requests.is_claimed().result((0, b"")) is False


def test_join_new_network_as_particle_cli_sends_it() -> None:
    message: Any = codec.decode_request(RequestType.WIFI_JOIN_NEW_NETWORK, CLI_JOIN_WPA2)
    assert isinstance(message, codec.device_class(wifi_pb2.JoinNewNetworkRequest))
    assert message.ssid == b"MyNet"  # strings are bytes on the device
    assert message.security == wifi_pb2.WPA2_PSK
    assert message.credentials.type == wifi_pb2.PASSWORD
    assert message.credentials.password == b"secret123"
    assert not message.hidden and not message.bssid and not message.HasField("interface_config")
    # fwsim's builder yields the same message; protobufjs also writes the default hidden=false.
    ours = requests.join_new_network("MyNet", "secret123", wifi_pb2.WPA2_PSK).request
    assert ours.type == 500
    assert ours.payload + bytes.fromhex("3000") == CLI_JOIN_WPA2
    assert codec.decode_request(500, ours.payload) == message


def test_join_open_network_as_particle_cli_sends_it() -> None:
    message: Any = codec.decode_request(RequestType.WIFI_JOIN_NEW_NETWORK, CLI_JOIN_OPEN)
    assert isinstance(message, codec.device_class(wifi_pb2.JoinNewNetworkRequest))
    assert message.ssid == b"OpenNet" and message.security == wifi_pb2.NO_SECURITY
    assert not message.HasField("credentials")
    ours = requests.join_new_network("OpenNet").request.payload
    assert codec.decode_request(500, ours) == message


# -- nanopb limits ---------------------------------------------------------------------------


def test_claim_code_limit_is_64_characters() -> None:
    ok = codec.encode_request(config_pb2.SetClaimCodeRequest(code="C" * 64))
    assert codec.decode_request(200, ok).code == b"C" * 64  # type: ignore[attr-defined]
    too_long = codec.encode_request(config_pb2.SetClaimCodeRequest(code="C" * 65))
    with pytest.raises(BadData) as caught:
        codec.decode_request(200, too_long)
    error = caught.value
    assert error.code == ResultCode.BAD_DATA == -280
    assert error.reason == "string overflow"
    assert error.message_name == "particle.ctrl.SetClaimCodeRequest" and error.field == "code"
    assert isinstance(error, DeviceOsError) and isinstance(error, PeerProtocolError)


def test_limit_counts_utf8_bytes_not_characters() -> None:
    fits = codec.encode_request(config_pb2.SetClaimCodeRequest(code="é" * 32))  # 64 bytes
    assert codec.decode_request(200, fits).code == "é".encode() * 32  # type: ignore[attr-defined]
    with pytest.raises(BadData, match="string overflow"):
        codec.decode_request(
            200, codec.encode_request(config_pb2.SetClaimCodeRequest(code="é" * 33))
        )


def _limited_paths(
    descriptor: Any, prefix: tuple[Any, ...] = (), depth: int = 4
) -> Iterator[tuple[Any, ...]]:
    for field in descriptor.fields:
        path = (*prefix, field)
        if field.message_type is not None:
            if depth > 0:
                yield from _limited_paths(field.message_type, path, depth - 1)
        else:
            limits = field_limits(field)
            if limits.max_string_bytes is not None or limits.max_size is not None:
                yield path


def _message_with(cls: type[Any], path: tuple[Any, ...], value: Any) -> Any:
    message = cls()
    target = message
    for field in path[:-1]:
        child = getattr(target, field.name)
        target = child.add() if field.is_repeated else child
        if not field.is_repeated:
            target.SetInParent()
    last = path[-1]
    if last.is_repeated:
        getattr(target, last.name).append(value)
    else:
        setattr(target, last.name, value)
    return message


LIMITED_CASES = [
    (request_type, path)
    for request_type, pair in codec.message_pairs().items()
    for path in _limited_paths(pair.request.DESCRIPTOR)
]


def test_limited_fields_were_found() -> None:
    names = {".".join(f.name for f in path) for _, path in LIMITED_CASES}
    assert {"code", "prefix", "suffix", "address", "bssid", "ap.ssid", "ap.bssid"} <= names
    assert "interface_config.hw_address" in names
    assert "prepare.server_nonce" in names


@pytest.mark.parametrize(
    ("request_type", "path"),
    LIMITED_CASES,
    ids=[f"{t.name}:{'.'.join(f.name for f in p)}" for t, p in LIMITED_CASES],
)
def test_every_nanopb_limit_is_enforced(request_type: RequestType, path: tuple[Any, ...]) -> None:
    cls = codec.request_class(request_type)
    leaf = path[-1]
    limits = field_limits(leaf)
    is_string = leaf.type == leaf.TYPE_STRING
    capacity = limits.max_string_bytes if is_string else limits.max_bytes_accepted
    assert capacity is not None

    def value(length: int) -> Any:
        return "s" * length if is_string else b"\x01" * length

    fits = _message_with(cls, path, value(capacity))
    assert codec.decode_request(request_type, codec.encode_request(fits)) == \
        codec.device_view(fits)
    over = codec.encode_request(_message_with(cls, path, value(capacity + 1)))
    expected = (
        "incorrect fixed length bytes size" if limits.fixed_length
        else "string overflow" if is_string else "bytes overflow"
    )  # fmt: skip
    # Strictly (as the reply check applies it), the value never fits.
    with pytest.raises(BadData) as strict:
        canonicalize(cls.DESCRIPTOR, over, strict=True)
    assert strict.value.reason == expected
    assert strict.value.field == ".".join(f.name for f in path)
    if any(f.is_repeated and field_limits(f).max_count is None for f in path[:-1]):
        # Inside an element of a callback repeated field: Device OS 6.2 never decodes those,
        # nanopb skips them unchecked, fwsim drops the malformed element.
        assert codec.decode_request(request_type, over) != \
            codec.device_class(cls).FromString(over)
        return
    with pytest.raises(BadData) as caught:
        codec.decode_request(request_type, over)
    assert caught.value.reason == expected
    assert caught.value.field == ".".join(f.name for f in path)
    if limits.fixed_length:  # empty means "all zeros" on the device; shorter is an error
        empty = _message_with(cls, path, b"")
        assert codec.decode_request(request_type, codec.encode_request(empty)) == \
            codec.device_view(empty)
        with pytest.raises(BadData):
            codec.decode_request(
                request_type, codec.encode_request(_message_with(cls, path, value(capacity - 1)))
            )


def test_repeated_max_count(monkeypatch: pytest.MonkeyPatch) -> None:
    # No Particle message sets max_count; check the rule on a field with an injected limit.
    from control_requests import nanopb_rules

    field = mesh_pb2.GetNetworkDiagnosticsRequest.DESCRIPTOR.fields_by_name["diagnostic_types"]
    original = nanopb_rules.field_limits

    def limited(descriptor: Any) -> nanopb_rules.FieldLimits:
        if descriptor is field:
            return nanopb_rules.FieldLimits(max_count=2)
        return original(descriptor)

    monkeypatch.setattr(nanopb_rules, "field_limits", limited)
    monkeypatch.setattr(nanopb_rules, "_RULES", {})
    cls = mesh_pb2.GetNetworkDiagnosticsRequest
    two = codec.encode_request(cls(diagnostic_types=[1, 2]))  # packed
    assert list(codec.decode_request(1012, two).diagnostic_types) == [1, 2]  # type: ignore[attr-defined]
    with pytest.raises(BadData, match="array overflow"):
        codec.decode_request(1012, codec.encode_request(cls(diagnostic_types=[1, 2, 3])))
    unpacked = bytes.fromhex("1001 1002 1003")
    with pytest.raises(BadData, match="array overflow"):
        codec.decode_request(1012, unpacked)
    mixed = bytes.fromhex("12020102 1003")  # packed run of 2, then one more
    with pytest.raises(BadData, match="array overflow"):
        codec.decode_request(1012, mixed)


# -- nanopb wire rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("00", "zero tag"),
        ("0a", "end-of-stream"),
        ("0a05414243", "end-of-stream"),  # static string: length checked, then read
        ("0d00000000", "wrong wire type"),  # field 1 (string) sent as fixed32
        ("0801", "wrong wire type"),  # field 1 (string) sent as varint
        ("1b1c", "invalid wire_type"),  # unknown group start
        ("1c", "invalid wire_type"),  # unknown group end
        ("1e", "invalid wire_type"),  # wire type 6
        ("1f", "invalid wire_type"),  # wire type 7
        ("1201", "end-of-stream"),  # unknown length-delimited field, truncated
        ("1900", "end-of-stream"),  # unknown 64-bit field, truncated
        ("0a8080808010", "varint overflow"),  # length of 2^32: not a 32-bit varint
        ("80", "end-of-stream"),  # tag varint cut short
    ],
)
def test_wire_rules(payload: str, reason: str) -> None:
    with pytest.raises(BadData) as caught:
        codec.decode_request(RequestType.SET_CLAIM_CODE, bytes.fromhex(payload))
    assert caught.value.reason == reason


def test_unknown_fields_are_skipped_and_dropped() -> None:
    payload = bytes.fromhex(
        "0a0141"  # code = "A"
        " 1001"  # field 2 varint
        " 5080808080808080808080808001"  # field 10: 14-byte varint (nanopb skips any length)
        " 1a03010203"  # field 3 length-delimited
        " 2501020304"  # field 4 fixed32
        " 290102030405060708"  # field 5 fixed64
    )
    message = codec.decode_request(RequestType.SET_CLAIM_CODE, payload)
    assert message == codec.device_view(config_pb2.SetClaimCodeRequest(code="A"))
    assert message.SerializeToString() == bytes.fromhex("0a0141")


def test_strings_are_cut_at_nul_and_otherwise_kept_byte_for_byte() -> None:
    """Issue 15 item 2: nanopb passes a string's bytes unchanged (no UTF-8 repair): the
    device view holds them as bytes, cut at the first NUL as the C code reads them."""
    cut = codec.decode_request(200, bytes.fromhex("0a054142004344"))
    assert cut.code == b"AB"  # type: ignore[attr-defined]
    raw = codec.decode_request(200, bytes.fromhex("0a03ff4142"))
    assert raw.code == b"\xffAB"  # type: ignore[attr-defined]
    # the limit applies to the raw bytes: 64 invalid bytes fit, 65 do not
    assert len(codec.decode_request(200, b"\x0a\x40" + b"\xff" * 64).code) == 64  # type: ignore[attr-defined]
    with pytest.raises(BadData, match="string overflow"):
        codec.decode_request(200, b"\x0a\x41" + b"\xff" * 65)


def test_padded_varints_are_accepted_like_nanopb() -> None:
    # key and length padded with zero continuation bytes: valid 32-bit varints for nanopb
    payload = bytes.fromhex("8a8000 838000") + b"ABC"
    assert codec.decode_request(200, payload).code == b"ABC"  # type: ignore[attr-defined]


def test_last_value_wins_and_submessages_merge() -> None:
    payload = bytes.fromhex("0a0141 0a0142")
    assert codec.decode_request(200, payload).code == b"B"  # type: ignore[attr-defined]
    merged = codec.decode_request(
        500,
        bytes.fromhex("22020801 2205120370773f"),  # credentials{type} + credentials{pw}
    )
    assert merged.credentials.type == wifi_pb2.PASSWORD  # type: ignore[attr-defined]
    assert merged.credentials.password == b"pw?"  # type: ignore[attr-defined]


def test_integer_width_rules() -> None:
    # uint32: a value above 32 bits is "integer too large" on the device
    assert codec.decode_request(401, bytes.fromhex("08ffffffff0f")).index == 2**32 - 1  # type: ignore[attr-defined]
    with pytest.raises(BadData, match="integer too large"):
        codec.decode_request(401, bytes.fromhex("088080808010"))
    # int32: cast to 32 bits, never an error (protobuf does the same)
    negative = codec.decode_request(220, bytes.fromhex("18ffffffffffffffffff01"))
    assert negative.port == -1  # type: ignore[attr-defined]
    wrapped = codec.decode_request(220, bytes.fromhex("1880808080f0ffffffff01"))
    assert wrapped.port == 0  # type: ignore[attr-defined]  # (int32_t) of 0xffffffff00000000
    # a 10th varint byte may carry junk above bit 63 (dropped); an 11th byte may not
    assert codec.decode_request(220, bytes.fromhex("1881808080808080807f")).port == 1  # type: ignore[attr-defined]
    with pytest.raises(BadData, match="varint overflow"):
        codec.decode_request(220, bytes.fromhex("188080808080808080808001"))
    # bool: nanopb's 32-bit varint reader
    assert codec.decode_request(73, bytes.fromhex("0802")).done is True  # type: ignore[attr-defined]
    assert codec.decode_request(73, bytes.fromhex("088080808000")).done is False  # type: ignore[attr-defined]
    with pytest.raises(BadData, match="varint overflow"):
        codec.decode_request(73, bytes.fromhex("088080808010"))


@pytest.mark.parametrize(
    ("payload", "mode"),
    [("0801", 1), ("08ff01", 255), ("0807", 7)],
)
def test_enums_fit_their_short_c_type(payload: str, mode: int) -> None:
    # DeviceMode {0, 1}: with -fshort-enums a uint8_t, decoded unsigned (nanopb UENUM)
    assert codec.decode_request(75, bytes.fromhex(payload)).mode == mode  # type: ignore[attr-defined]


@pytest.mark.parametrize("payload", ["088002", "08ffffffffffffffffff01", "08ffffffff0f"])
def test_enum_values_beyond_the_c_type_are_bad_data(payload: str) -> None:
    with pytest.raises(BadData, match="integer too large"):
        codec.decode_request(75, bytes.fromhex(payload))  # 256, -1, 2**32 - 1


def test_signed_enum_range() -> None:
    # RoutePreference {-1, 0, 1}: an int8_t
    entry = mesh_pb2.DiagnosticInfo.NetworkData.HasRoute.HasRouteEntry.DESCRIPTOR
    assert canonicalize(entry, bytes.fromhex("10ffffffffffffffffff01")) == bytes.fromhex(
        "10ffffffffffffffffff01"
    )
    assert canonicalize(entry, bytes.fromhex("107f")) == bytes.fromhex("107f")
    with pytest.raises(BadData, match="integer too large"):
        canonicalize(entry, bytes.fromhex("108001"))  # 128
    with pytest.raises(BadData, match="integer too large"):
        canonicalize(entry, bytes.fromhex("108080808008"))  # (int32_t)2**31 = -2**31
    # nanopb casts to int32_t first: 0xffffffff is -1, which fits
    assert canonicalize(entry, bytes.fromhex("10ffffffff0f")) == bytes.fromhex(
        "10ffffffffffffffffff01"
    )


def test_packed_and_unpacked_repeated_scalars() -> None:
    cls = mesh_pb2.GetNetworkDiagnosticsRequest
    packed = codec.decode_request(1012, bytes.fromhex("1203010209"))
    unpacked = codec.decode_request(1012, bytes.fromhex("100110021009"))
    assert packed == unpacked == codec.device_view(cls(diagnostic_types=[1, 2, 9]))
    with pytest.raises(BadData, match="parent stream too short"):
        codec.decode_request(1012, bytes.fromhex("120201"))  # packed run longer than payload
    # diagnostic_types has no max_count: a callback field, skipped by the device unchecked;
    # a malformed run is dropped instead of failing the request.
    assert codec.decode_request(1012, bytes.fromhex("12020180 1803")) == \
        codec.device_view(cls(timeout=3))


# -- replies ---------------------------------------------------------------------------------


def test_encode_reply_rejects_values_the_device_cannot_hold() -> None:
    assert codec.encode_reply(config_pb2.GetDeviceIdReply(id="0" * 24)) == b"\x0a\x18" + b"0" * 24
    with pytest.raises(ReplyEncodingFailed) as caught:
        codec.encode_reply(config_pb2.GetDeviceIdReply(id="0" * 25))
    # Device OS's encodeReplyMessage reports any encoder failure as SYSTEM_ERROR_UNKNOWN.
    assert caught.value.code == ResultCode.UNKNOWN == -100
    assert caught.value.field == "id"
    with pytest.raises(ReplyEncodingFailed):
        codec.encode_reply(wifi_pb2.GetCurrentNetworkReply(bssid=b"1234567"))


def test_encode_reply_is_field_number_ordered_without_defaults() -> None:
    reply = wifi_pb2.GetCurrentNetworkReply(rssi=-40, ssid="Net", channel=0)
    assert codec.encode_reply(reply) == bytes.fromhex("0a034e6574") + bytes.fromhex(
        "20d8ffffffffffffffff01"
    )


def test_decode_reply() -> None:
    assert codec.decode_reply(72, b"") == config_pb2.GetDeviceModeReply()
    with_unknown = codec.decode_reply(72, bytes.fromhex("0801 2801"))
    assert with_unknown.SerializeToString() == bytes.fromhex("0801")
    with pytest.raises(BadData):
        codec.decode_reply(72, b"\xff")


def test_odd_bytes_limits_use_the_struct_padding() -> None:
    # PB_BYTES_ARRAY_T(3) is {uint16 size; uint8 bytes[3]} + 1 padding byte: 4 bytes fit.
    info = mesh_pb2.DiagnosticInfo.DESCRIPTOR
    assert canonicalize(info, bytes.fromhex("9201 04 01020304")) == bytes.fromhex("920104 01020304")
    with pytest.raises(BadData, match="bytes overflow"):
        canonicalize(info, bytes.fromhex("9201 05 0102030405"))
    # even sizes have no padding: bssid (6) takes 6, not 7
    with pytest.raises(BadData, match="bytes overflow"):
        codec.decode_request(500, bytes.fromhex("1207 01020304050607"))


def test_callback_strings_take_scalar_wire_types_as_raw_bytes() -> None:
    # JoinNewNetworkRequest.ssid has no max_length: Device OS reads it with a decode callback
    # (DecodedCString), which receives the raw value of a varint / fixed32 / fixed64 too.
    assert codec.decode_request(500, bytes.fromhex("0841")).ssid == b"A"  # type: ignore[attr-defined]
    assert codec.decode_request(500, bytes.fromhex("0d41424344")).ssid == b"ABCD"  # type: ignore[attr-defined]
    assert codec.decode_request(500, bytes.fromhex("094142434445464748")).ssid == b"ABCDEFGH"  # type: ignore[attr-defined]
    with pytest.raises(BadData, match="varint overflow"):  # read_raw_value takes 10 bytes
        codec.decode_request(500, bytes.fromhex("08 8080808080808080808001"))
    with pytest.raises(BadData, match="invalid wire_type"):
        codec.decode_request(500, bytes.fromhex("0b0c"))
    long_ssid = "S" * 300  # no nanopb limit on callback strings
    payload = codec.encode_request(wifi_pb2.JoinNewNetworkRequest(ssid=long_ssid))
    assert codec.decode_request(500, payload).ssid == long_ssid.encode()  # type: ignore[attr-defined]


def test_malformed_callback_elements_are_dropped() -> None:
    # interface_config.ipv4_config.addresses is repeated without max_count: Device OS 6.2's
    # handler never decodes it, nanopb skips it unchecked. fwsim keeps good elements only.
    good = network_pb_address(prefix_length=24)
    bad = bytes.fromhex("0a03 ff ff ff")  # an element that is not an InterfaceAddress
    ipv4 = bytes.fromhex("0a") + bytes([len(good)]) + good + bad
    interface = bytes.fromhex("32") + bytes([len(ipv4)]) + ipv4
    payload = bytes.fromhex("0a024e65") + bytes.fromhex("2a") + bytes([len(interface)]) + interface
    message = codec.decode_request(500, payload)
    addresses = message.interface_config.ipv4_config.addresses  # type: ignore[attr-defined]
    assert [a.prefix_length for a in addresses] == [24]
    with pytest.raises(BadData):
        canonicalize(wifi_pb2.JoinNewNetworkRequest.DESCRIPTOR, payload, strict=True)


def network_pb_address(prefix_length: int) -> bytes:
    from control_requests._pb import network_pb2

    return network_pb2.InterfaceAddress(prefix_length=prefix_length).SerializeToString()
