"""One harness per transport framer/session, all with the same shape, for the conformance suite.

A harness owns a fresh :class:`~firmware_sim.kernel.world.World` holding only the sans-IO unit
under test and the smallest fakes it talks to (no device, no cloud), so "no timer left after
close" is simply ``len(world.scheduler) == 0``. It offers:

* ``script``: valid messages, in order (one request, one command line, one frame group...);
* ``exchange(message, chunker)``: feed one message cut by ``chunker`` (at most ``max_chunk``
  bytes a piece: an ATT write, a USB data stage), let the world settle, return what came back
  for it - a value that must not depend on the cutting;
* ``malformed``: inputs with the documented answer (``Malformed.expect`` checks the outcome);
* ``feed_raw(data, chunker)``: arbitrary bytes; only the transport's documented errors may
  escape (``allowed``);
* ``open_partial()`` (leave a request half-sent), ``close()`` (idempotent) and
  ``timers_left``.

The fakes answer control requests with ``b"re:" + payload`` (result 0) synchronously.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from control_requests.services import VisibleNetwork
from control_requests.types import WifiSecurity
from firmware_sim.kernel.errors import ResultCode
from firmware_sim.kernel.scheduler import Scheduler
from firmware_sim.kernel.trace import Tracer
from firmware_sim.kernel.world import World
from transports.ble.client_channel import ClientChannelState, ClientControlChannel
from transports.ble.device_channel import DeviceControlChannel
from transports.ble.framing import (
    FramingError,
    frame_handshake,
    handshake_assembler,
    message_assembler,
)
from transports.ble.gatt import MAX_ATTRIBUTE_VALUE_SIZE
from transports.serial.console import ListeningConsole, Texts, WlanCipher, WlanSecurity
from transports.softap.commands import EnterpriseConfig, SoftApCommands
from transports.softap.http import HttpSession
from transports.softap.options import SoftApOptions
from transports.softap.session import Session
from transports.softap.tcp import TcpSession, encode_request
from transports.usb.protocol import (
    MAX_CONTROL_TRANSFER_DATA_SIZE,
    ServiceReply,
    ServiceStatus,
    SetupPacket,
    check_request,
    init_request,
    recv_request,
    send_request,
)
from transports.usb.service import UsbControlService
from transports.usb.transfer import TransferStatus

Chunker = Callable[[bytes], list[bytes]]
SECRET = "ABCDEFGHJKLMNPQ"
DEVICE_ID = "e00fce68aabbccddeeff0011"


def echo(payload: bytes) -> bytes:
    return b"re:" + payload


@dataclass
class Malformed:
    """A bad input and the documented answer."""

    label: str
    messages: list[bytes]
    expect: Callable[[list[object]], bool]


class Harness(Protocol):
    name: str
    max_chunk: int
    world: World
    script: Sequence[bytes]
    malformed: list[Malformed]
    #: Exceptions ``feed_raw`` may raise (the transport's documented errors).
    allowed: tuple[type[BaseException], ...]

    def exchange(self, message: bytes, chunker: Chunker) -> object: ...
    def feed_raw(self, data: bytes, chunker: Chunker) -> None: ...
    def open_partial(self) -> None: ...
    def close(self) -> None: ...

    @property
    def timers_left(self) -> int: ...


class _Base:
    name = ""
    max_chunk = 1 << 16
    allowed: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        self.world = World(0)

    def settle(self, seconds: float = 3.0) -> None:
        self.world.run_for(seconds)

    @property
    def timers_left(self) -> int:
        return len(self.world.scheduler)


# -- USB: the control-request service, one request per message ---------------------------------


_USB_MALFORMED = (b"init-short", b"check-unknown", b"send-oversize", b"send-mismatch",
                  b"recv-early")


@dataclass
class _Handle:
    on_complete: Callable[[int, bytes], None]
    done: bool = False
    delivered: int = 0

    def cancel(self) -> None:
        if not self.done:
            self.done = True
            self.on_complete(int(ResultCode.CANCELLED), b"")

    def reply_delivered(self) -> None:
        self.delivered += 1


class EchoDispatcher:
    """Answers every request at once: result 0, ``b"re:" + payload``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, bytes]] = []

    def submit(self, channel: str, request_type: int, payload: bytes,
               on_complete: Callable[[int, bytes], None]) -> _Handle:
        self.seen.append((channel, request_type, bytes(payload)))
        handle = _Handle(on_complete)
        handle.done = True
        on_complete(0, echo(payload))
        return handle


class UsbHarness(_Base):
    """``UsbControlService``: INIT, SEND in chunks, CHECK, RECV in chunks. USB input is control
    transfers, not a byte stream: a message is a request payload (its SEND data stages and the
    RECV of its reply are cut by the chunker), and the malformed cases are named transfer
    sequences (``b"init-short"``, ``b"send-oversize"``...)."""

    name = "usb-service"
    max_chunk = MAX_CONTROL_TRANSFER_DATA_SIZE
    script: tuple[bytes, ...] = (b"", b"x", b"p" * 64, b"q" * 65, bytes(range(256)) * 3)

    def __init__(self) -> None:
        super().__init__()
        self.dispatcher = EchoDispatcher()
        self.service = UsbControlService(dispatcher=lambda: self.dispatcher,
                                         scheduler=self.world.scheduler,
                                         tracer=self.world.trace.bind("dev", "usb"))
        self.request_type = 10
        self.malformed = [
            Malformed("INIT with a 8-byte data stage STALLs",
                      [b"init-short"], lambda out: out == ["STALL"]),
            Malformed("CHECK of an unknown id is NOT_FOUND",
                      [b"check-unknown"], lambda out: out == [int(ServiceStatus.NOT_FOUND)]),
            Malformed("SEND past the announced size STALLs (oversize payload)",
                      [b"send-oversize"], lambda out: out == ["STALL"]),
            Malformed("SEND whose data stage differs from wLength STALLs",
                      [b"send-mismatch"], lambda out: out == ["STALL"]),
            Malformed("RECV before the reply is ready STALLs",
                      [b"recv-early"], lambda out: out == ["STALL"]),
        ]

    def _transfer(self, setup: SetupPacket, data: bytes = b"") -> bytes | None:
        result = self.service.handle(setup, data)
        return result.data if result.status is TransferStatus.COMPLETED else None

    def _reply(self, setup: SetupPacket) -> ServiceReply | str:
        data = self._transfer(setup)
        return "STALL" if data is None else ServiceReply.decode(data)

    def exchange(self, message: bytes, chunker: Chunker) -> object:
        if message in _USB_MALFORMED:
            return self._malformed(message)
        self.request_type += 1
        init = self._reply(init_request(self.request_type, len(message)))
        if isinstance(init, str):
            return ("init", init)
        assert init.id is not None
        if init.status == ServiceStatus.PENDING:  # a payload above 64 bytes: wait for the buffer
            self.settle(0.01)
            assert self._reply(check_request(init.id)) == ServiceReply(ServiceStatus.OK)
        sent = [self._transfer(send_request(init.id, len(chunk)), chunk) is not None
                for chunk in chunker(message)]
        self.settle(0.01)
        check = self._reply(check_request(init.id))
        if isinstance(check, str):
            return ("check", check)
        reply = b""
        if check.size:
            for piece in chunker(bytes(check.size)):
                data = self._transfer(recv_request(init.id, len(piece)))
                reply += b"<STALL>" if data is None else data
        return (all(sent), check.result, reply, self.dispatcher.seen[-1][1:])

    def _malformed(self, kind: bytes) -> object:
        if kind == b"init-short":
            setup = init_request(99, 0)
            return self._reply(SetupPacket(setup.bmRequestType, setup.bRequest, setup.wValue,
                                           setup.wIndex, 8))
        if kind == b"check-unknown":
            reply = self._reply(check_request(4242))
            return reply if isinstance(reply, str) else reply.status
        init = self._reply(init_request(99, 4))
        assert isinstance(init, ServiceReply) and init.id is not None
        if kind == b"send-oversize":
            return self._reply_of_send(send_request(init.id, 5), b"12345")
        if kind == b"send-mismatch":
            return self._reply_of_send(send_request(init.id, 4), b"123")
        return self._reply_of_send(recv_request(init.id, 4), b"")  # recv-early

    def _reply_of_send(self, setup: SetupPacket, data: bytes) -> str:
        return "STALL" if self._transfer(setup, data) is None else "OK"

    def feed_raw(self, data: bytes, chunker: Chunker) -> None:
        for piece in chunker(data):
            if len(piece) < 8:
                continue
            setup = SetupPacket.unpack(piece[:8])
            result = self.service.handle(setup, piece[8:])
            assert isinstance(result.status, TransferStatus)
        self.settle(0.01)

    def open_partial(self) -> None:
        init = self._reply(init_request(7, 200))  # waits for its buffer (a timer runs)
        assert isinstance(init, ServiceReply) and init.status == ServiceStatus.PENDING
        assert self.timers_left == 1

    def close(self) -> None:
        self.service.shutdown()


# -- serial: the listening-mode console, one command or line per message -------------------------


@dataclass
class ConsoleServices:
    claim_codes: list[bytes] = field(default_factory=list)
    saved: list[tuple[bytes, bytes, WlanSecurity, WlanCipher]] = field(default_factory=list)
    exits: int = 0
    has_wifi: bool = True

    def device_id(self) -> str:
        return DEVICE_ID

    def system_info(self) -> list[tuple[str, str]]:
        return [("ms", SECRET), ("sn", "P046AB1234ABC12")]

    def mac_address(self) -> bytes:
        return bytes.fromhex("a4c138aabbcc")

    def system_version(self) -> str:
        return "6.2.0"

    def module_info_json(self) -> str:
        return '"p":32,"m":[]'

    def diagnostics_json(self) -> str:
        return '{"sys:uptime":1}'

    def is_claimed(self) -> bool:
        return bool(self.claim_codes)

    def set_claim_code(self, code: bytes) -> int:
        self.claim_codes.append(code)
        return 0

    def exit_listening(self) -> None:
        self.exits += 1

    def enter_safe_mode_listening(self) -> None:
        pass

    def scan(self) -> list[tuple[bytes, WlanSecurity]]:
        return [(b"Net1", WlanSecurity.WPA2)]

    def save_wifi_credentials(self, ssid: bytes, password: bytes, security: WlanSecurity,
                              cipher: WlanCipher) -> int:
        self.saved.append((ssid, password, security, cipher))
        return 0


class ConsoleHarness(_Base):
    """``ListeningConsole``: bytes in, printed bytes out."""

    name = "serial-console"
    max_chunk = 64  # a USB CDC full-speed packet
    script: tuple[bytes, ...] = (
        b"i", b"v", b"m", b"c", b"s", b"d", b"C", b"A" * 63 + b"\r", b"c",
        b"w", b"Net1\r", b"hunter22\r",
        b"w", b"Other\n", b"3\r", b"1\r", b"pass-word\r", b"f", b"x")

    def __init__(self) -> None:
        super().__init__()
        self.services = ConsoleServices()
        self.out = bytearray()
        self.console = ListeningConsole(self.services, self.out.extend, self.world.scheduler,
                                        self.world.trace.bind("dev", "serial"))
        self.malformed = [
            Malformed("a claim code that is not 63 characters is refused",
                      [b"C", b"short\r"],
                      lambda out: out[1] == b"short\r\n" + Texts.CLAIM_WRONG + b"\r\n"),
            Malformed("an over-long claim line ends at 63 characters; the rest is discarded",
                      [b"C", b"B" * 70 + b"\r"],
                      lambda out: out[1] == b"B" * 63 + b"\r\n" + Texts.CLAIM_SET + b"B" * 63
                      + b"\r\n"),
            Malformed("unknown command bytes are read and ignored",
                      [b"Z", b"\x00\xff\x80", b"\r\n"], lambda out: out == [b"", b"", b""]),
            Malformed("a security answer out of range is asked again",
                      [b"w", b"Other\r", b"9\r"],
                      lambda out: out[2] == b"9\r\n" + Texts.SECURITY),
        ]

    def exchange(self, message: bytes, chunker: Chunker) -> object:
        start = len(self.out)
        for chunk in chunker(message):
            self.console.feed(chunk)
        self.settle()
        return bytes(self.out[start:])

    def feed_raw(self, data: bytes, chunker: Chunker) -> None:
        for chunk in chunker(data):
            self.console.feed(chunk)
            self.world.run_for(0.2)
        self.settle()

    def open_partial(self) -> None:
        self.console.feed(b"f")  # the YModem pause: a timer runs
        assert self.timers_left == 1

    def close(self) -> None:
        self.console.close()
        printed = len(self.out)
        self.console.feed(b"i")  # a closed console reads nothing
        assert len(self.out) == printed


# -- SoftAP: the TCP protocol and the HTTP server over one fake SoftAP ----------------------------


class _FakeServices:
    def __init__(self) -> None:
        self.claim_codes: list[bytes] = []

    def is_claimed(self) -> bool:
        return False

    def set_claim_code(self, code: bytes) -> int:
        self.claim_codes.append(bytes(code))
        return 0

    def wifi_scan(self) -> list[VisibleNetwork]:
        return [VisibleNetwork("HomeNet", b"\x02" * 6, int(WifiSecurity.WPA2_PSK), 6, -45),
                VisibleNetwork("OpenCafe", b"\x04" * 6, int(WifiSecurity.NO_SECURITY), 1, -70)]


class _FakeControl:
    def __init__(self) -> None:
        self.services = _FakeServices()


class _FakePhoton:
    """The part of a ``SoftApDevice`` the commands use."""

    device_id = DEVICE_ID

    def __init__(self) -> None:
        self.control = _FakeControl()
        self.stored: list[tuple[str, str | None, WifiSecurity]] = []

    def wifi_credential_count(self) -> int:
        return len(self.stored)

    def store_wifi_credentials(self, ssid: str, password: str | None,
                               security: WifiSecurity) -> int:
        self.stored.append((ssid, password, security))
        return 0


class FakeSoftAp:
    """A ``SessionHost`` and ``CommandHost`` with a fake device and no RSA key."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.options = SoftApOptions()
        self.tracer: Tracer = world.trace.bind("photon", "softap")
        self.device = _FakePhoton()
        self.key = None
        self.slots: dict[int, str] = {}
        self.enterprise: EnterpriseConfig | None = None
        self.commands = SoftApCommands(self)
        self.closed: list[tuple[int, str]] = []
        self.completions = 0

    def session_closed(self, session: Session, reason: str) -> None:
        self.closed.append((session.conn, reason))

    def schedule_complete(self) -> None:
        self.completions += 1

    def has_credentials_at(self, index: int) -> bool:
        return index in self.slots


@dataclass
class _Probe:
    output: bytearray = field(default_factory=bytearray)
    closed: bool = False

    def send(self, data: bytes) -> None:
        assert not self.closed, "a session wrote after closing"
        self.output += data

    def close(self) -> None:
        self.closed = True


def _set(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


class SoftApTcpHarness(_Base):
    """``TcpSession``: one connection per request, as softap-setup does."""

    name = "softap-tcp"
    script: tuple[bytes, ...] = (
        encode_request("version"), encode_request("device-id"),
        encode_request("scan-ap"), encode_request("public-key"),
        encode_request("set", _set({"k": "cc", "v": "c0de"})),
        encode_request("configure-ap", _set({"idx": 0, "ssid": "HomeNet",
                                             "pwd": "home-pass-1", "sec": 4194308})),
        encode_request("connect-ap", _set({"idx": 0})), b"ant-internal\n0\n\n")

    def __init__(self) -> None:
        super().__init__()
        self.softap = FakeSoftAp(self.world)
        self.conn = 0
        self.session: TcpSession | None = None
        self.malformed = [
            Malformed("a header over 128 bytes is closed without an answer",
                      [b"x" * 200], lambda out: out == [(b"", True)]),
            Malformed("an unknown command is closed without an answer",
                      [encode_request("nope")], lambda out: out == [(b"", True)]),
            Malformed("a body over max_body_bytes: the preamble, then no answer",
                      [b"set\n99999\n\n"], lambda out: out == [(b"\n\n", True)]),
            Malformed("a negative length: the preamble, then no answer",
                      [b"set\n-5\n\n"], lambda out: out == [(b"\n\n", True)]),
            Malformed("a body that does not parse: the preamble, then no answer",
                      [encode_request("set", b"{not json")], lambda out: out == [(b"\n\n", True)]),
        ]

    def _open(self) -> tuple[TcpSession, _Probe]:
        probe = _Probe()
        self.conn += 1
        session = TcpSession(self.softap, self.conn, probe.send, probe.close)
        self.session = session
        return session, probe

    def exchange(self, message: bytes, chunker: Chunker) -> object:
        session, probe = self._open()
        for chunk in chunker(message):
            if probe.closed:
                break  # the device closed: the client's later bytes go nowhere
            session.data_received(chunk)
        self.settle()
        return (bytes(probe.output), probe.closed)

    def feed_raw(self, data: bytes, chunker: Chunker) -> None:
        session, probe = self._open()
        for chunk in chunker(data):
            if not probe.closed:
                session.data_received(chunk)
        session.eof_received()
        self.settle()

    def open_partial(self) -> None:
        session, _ = self._open()
        session.data_received(b"set\n10\n\n{\"k\"")  # half a body: the request timer runs
        assert self.timers_left == 1

    def close(self) -> None:
        if self.session is not None:
            self.session.close("test")
            self.session.connection_lost()


def _http(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 192.168.0.1\r\n"
    if body or method == "POST":
        head += ("Content-Type: application/x-www-form-urlencoded\r\n"
                 f"Content-Length: {len(body)}\r\n")
    return head.encode() + b"\r\n" + body


class SoftApHttpHarness(_Base):
    """``HttpSession``: one keep-alive connection, one request per message."""

    name = "softap-http"
    script: tuple[bytes, ...] = (
        _http("GET", "/hello"), _http("GET", "/version"), _http("GET", "/device-id"),
        _http("GET", "/scan-ap"), _http("POST", "/set", _set({"k": "cc", "v": "c0de"})),
        _http("GET", "/"), _http("GET", "/index"), _http("GET", "/nowhere"),
        _http("HEAD", "/version"), _http("GET", "/public-key?x=1"))

    def __init__(self) -> None:
        super().__init__()
        self.softap = FakeSoftAp(self.world)
        self.conn = 0
        self.session, self.probe = self._open()
        self.malformed = [
            Malformed("garbage is a 400 and a close",
                      [b"\x00garbage\r\n\r\n"],
                      lambda out: _status(out[0]) == 400 and _closed(out[0])),
            Malformed("a header block over 8192 bytes is a 400 and a close",
                      [b"GET /version HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n"],
                      lambda out: _status(out[0]) == 400 and _closed(out[0])),
            Malformed("a body over max_body_bytes is answered 200 without a body",
                      [_http("POST", "/set", b"{" + b" " * 17000 + b"}")],
                      lambda out: _status(out[0]) == 200 and _body(out[0]) == b""),
            Malformed("an unknown page is a 404",
                      [_http("GET", "/etc/passwd")], lambda out: _status(out[0]) == 404),
        ]

    def _open(self) -> tuple[HttpSession, _Probe]:
        probe = _Probe()
        self.conn += 1
        session = HttpSession(self.softap, self.conn, probe.send, probe.close)
        return session, probe

    def exchange(self, message: bytes, chunker: Chunker) -> object:
        start = len(self.probe.output)
        for chunk in chunker(message):
            if not self.probe.closed:
                self.session.data_received(chunk)
        self.settle()
        return (bytes(self.probe.output[start:]), self.probe.closed)

    def feed_raw(self, data: bytes, chunker: Chunker) -> None:
        for chunk in chunker(data):
            if not self.probe.closed:
                self.session.data_received(chunk)
        self.session.eof_received()
        self.settle()

    def open_partial(self) -> None:
        self.session.data_received(b"GET /vers")  # idle timer of the half request runs
        assert self.timers_left == 1

    def close(self) -> None:
        self.session.close("test")
        self.session.connection_lost()


def _status(outcome: object) -> int:
    assert isinstance(outcome, tuple)
    head = outcome[0].split(b"\r\n", 1)[0]
    return int(head.split(b" ")[1])


def _closed(outcome: object) -> bool:
    assert isinstance(outcome, tuple)
    return bool(outcome[1])


def _body(outcome: object) -> bytes:
    assert isinstance(outcome, tuple)
    body = outcome[0].split(b"\r\n\r\n", 1)[1]
    return b"" if body == b"0\r\n\r\n" else body


# -- BLE: the frame assembler and the device's control channel ----------------------------------


class BleFramingHarness(_Base):
    """``FrameAssembler`` of handshake packets, then of encrypted messages."""

    name = "ble-framing"
    script: tuple[bytes, ...] = (
        frame_handshake(b"a"), frame_handshake(b"round one" * 30),
        frame_handshake(bytes(512)) + frame_handshake(b"two in a row"),
        # "msg:": encrypted-message framing (size counts the payload; 6 + 8 bytes around it)
        b"msg:" + (3).to_bytes(2, "little") + bytes(6) + b"abc" + bytes(8)
        + (0).to_bytes(2, "little") + bytes(14))

    def __init__(self) -> None:
        super().__init__()
        self.handshake = handshake_assembler()
        self.messages = message_assembler()
        self.allowed = (FramingError,)
        self.malformed = [
            Malformed("a handshake packet of size 0 is TOO_LARGE", [b"\x00\x00"],
                      lambda out: out == [("error", int(ResultCode.TOO_LARGE))]),
            Malformed("a handshake packet over 512 bytes is TOO_LARGE (oversize)",
                      [(513).to_bytes(2, "little") + bytes(513)],
                      lambda out: out == [("error", int(ResultCode.TOO_LARGE))]),
        ]

    def exchange(self, message: bytes, chunker: Chunker) -> object:
        assembler, data = ((self.messages, message[4:]) if message.startswith(b"msg:")
                           else (self.handshake, message))
        frames: list[bytes] = []
        try:
            for chunk in chunker(data):
                frames += assembler.feed(chunk)
        except FramingError as exc:
            assembler.reset()
            return ("error", int(exc.result))
        return frames

    def feed_raw(self, data: bytes, chunker: Chunker) -> None:
        try:
            for chunk in chunker(data):
                for frame in self.handshake.feed(chunk):
                    assert 1 <= len(frame) <= 512
        finally:
            self.handshake.reset()

    def open_partial(self) -> None:
        assert self.handshake.feed(b"\x05\x00ab") == []
        assert not self.handshake.idle

    def close(self) -> None:
        self.handshake.reset()
        self.messages.reset()
        assert self.handshake.idle and self.messages.idle


class _Link:
    peer_address = "11:22:33:44:55:66"

    def __init__(self, on_disconnect: Callable[[], None]) -> None:
        self.notifications: list[bytes] = []
        self.disconnects = 0
        self._on_disconnect = on_disconnect

    def notify(self, data: bytes) -> None:
        self.notifications.append(bytes(data))

    def disconnect(self) -> None:
        self.disconnects += 1
        self._on_disconnect()


class _ChannelHost:
    def __init__(self, world: World) -> None:
        self.world = world
        self._tracer = world.trace.bind("dev", "ble")
        self._random = world.rng_for("conformance-device")
        self.logs: list[str] = []
        self.prov: list[int] = []
        self.dispatcher = EchoDispatcher()

    @property
    def scheduler(self) -> Scheduler:
        return self.world.scheduler

    @property
    def tracer(self) -> Tracer:
        return self._tracer

    def log(self, level: str, category: str, message: str) -> None:
        self.logs.append(f"{level} {message}")

    def prov_mode_event(self, param: int) -> None:
        self.prov.append(param)

    def mobile_secret(self) -> bytes | None:
        return SECRET.encode()

    def randbytes(self, count: int) -> bytes:
        return self._random.randbytes(count)

    def submit(self, request_type: int, payload: bytes,
               on_complete: Callable[[int, bytes], None]) -> _Handle:
        return self.dispatcher.submit("ble", request_type, payload, on_complete)


class BleChannelHarness(_Base):
    """``DeviceControlChannel`` with a phone's ``ClientControlChannel``: RX writes in, TX
    notifications out. The first message runs the EC-JPAKE handshake (cut the same way)."""

    name = "ble-channel"
    max_chunk = MAX_ATTRIBUTE_VALUE_SIZE
    script: tuple[bytes, ...] = (b"", b"hello", bytes(range(200)))

    def __init__(self) -> None:
        super().__init__()
        self.host = _ChannelHost(self.world)
        self.channel = DeviceControlChannel(self.host)
        self.link = _Link(self.channel.disconnected_event)
        self.channel.connected_event(self.link)
        self.channel.mtu_changed(247)
        self.channel.cccd_changed(True)
        self.phone = ClientControlChannel(SECRET, self.world.rng_for("conformance-phone")
                                          .randbytes)
        self.read = 0
        self.malformed = [
            Malformed("a handshake packet of size 0 ends the connection (TOO_LARGE)",
                      [b"raw:\x00\x00"], lambda out: out == [("error", int(ResultCode.TOO_LARGE))]),
            Malformed("a garbage handshake ends the connection (UNKNOWN, as any EC-JPAKE error)",
                      [b"raw:\x10\x00" + bytes(range(16))],
                      lambda out: out == [("error", int(ResultCode.UNKNOWN))]),
            Malformed("a burst over the 1024-byte pool is NO_MEMORY (oversize)",
                      [b"raw:" + bytes(5 * MAX_ATTRIBUTE_VALUE_SIZE)],
                      lambda out: out == [("error", int(ResultCode.NO_MEMORY))]),
            Malformed("a frame with a bad tag after the handshake ends the connection",
                      [b"", b"tamper"], lambda out: out[1] == ("error", int(ResultCode.UNKNOWN))),
        ]

    def _write(self, data: bytes, chunker: Chunker) -> None:
        for chunk in chunker(data):
            self.channel.data_written(chunk)

    def _pump(self, chunker: Chunker) -> list[tuple[int, int, bytes]]:
        """Deliver notifications to the phone until quiet; returns the replies."""
        replies: list[tuple[int, int, bytes]] = []
        for _ in range(100):
            self.settle(0.05)
            fresh = self.link.notifications[self.read:]
            self.read = len(self.link.notifications)
            if not fresh:
                break
            for packet in fresh:
                received = self.phone.data_received(packet)
                if received.outgoing:
                    self._write(received.outgoing, chunker)
                replies += [(r.request_id, r.result, r.payload) for r in received.replies]
        return replies

    def _error(self) -> tuple[str, int] | None:
        errors = [line for line in self.host.logs if line.startswith("ERROR Channel error: ")]
        return ("error", int(errors[-1].rsplit(" ", 1)[1])) if errors else None

    def exchange(self, message: bytes, chunker: Chunker) -> object:
        if message.startswith(b"raw:"):
            self._write(message[4:], chunker)
            self.settle(0.1)
            return self._error() or ("no error", self.link.disconnects)
        if self.phone.state is ClientChannelState.NEW:
            self._write(self.phone.start(), chunker)
            self._pump(chunker)
            assert self.phone.state is ClientChannelState.READY, self.host.logs
        if message == b"tamper":
            _, frame = self.phone.request(1, b"x")
            self._write(frame[:-1] + bytes([frame[-1] ^ 1]), chunker)
            self.settle(0.1)
            return self._error()
        _, frame = self.phone.request(7, message)
        self._write(frame, chunker)
        return self._pump(chunker)

    def feed_raw(self, data: bytes, chunker: Chunker) -> None:
        for chunk in chunker(data):
            self.channel.data_written(chunk[:MAX_ATTRIBUTE_VALUE_SIZE])
        self.settle(0.1)

    def open_partial(self) -> None:
        self.channel.data_written(b"\x40\x00abc")  # part of a handshake packet: the loop runs
        assert self.timers_left == 1

    def close(self) -> None:
        self.channel.disconnected_event()
        self.channel.data_written(b"\x05\x00hello")  # nobody is connected: ignored


HARNESSES: dict[str, Callable[[], Harness]] = {
    harness.name: harness
    for harness in (UsbHarness, ConsoleHarness, SoftApTcpHarness, SoftApHttpHarness,
                    BleFramingHarness, BleChannelHarness)
}


def split(data: bytes, sizes: Sequence[int], cap: int) -> list[bytes]:
    """Cut ``data`` into pieces of the given sizes (cycled), each at most ``cap`` bytes."""
    pieces: list[bytes] = []
    offset = 0
    index = 0
    while offset < len(data):
        size = max(1, min(cap, sizes[index % len(sizes)]))
        pieces.append(data[offset:offset + size])
        offset += size
        index += 1
    return pieces
