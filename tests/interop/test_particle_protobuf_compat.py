"""fwsim's .proto messages against Particle's own (@particle/device-os-protobuf 2.9.0).

Particle's .proto files are compiled with grpcio-tools into descriptor sets in a temporary
directory and loaded into private descriptor pools (their full names equal fwsim's, so they
cannot share the default pool). For every message and enum fwsim defines, the test checks:

(a) the same fields (number, name, type, label, presence, referenced types, oneofs, JSON name,
    serialized options incl. nanopb limits), nested types and enum values;
(b) populated instances encoded by fwsim decode identically with Particle's classes (same
    re-encoded bytes, same JSON view), and the reverse;
(c) the same ``(type_id)`` option on every request message, and the codec maps each number to
    the message particle-usb uses for it.
"""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    json_format,
    message_factory,
    unknown_fields,
)
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FileDescriptor

from control_requests import codec
from control_requests._pb import (
    _isolated_pool,
    cellular_pb2,
    cloud_pb2,
    common_pb2,
    config_pb2,
    describe_pb2,
    extensions_pb2,
    logging_pb2,
    mesh_pb2,
    nanopb_pb2,
    network_legacy_pb2,
    network_pb2,
    storage_pb2,
    wifi_legacy_pb2,
    wifi_pb2,
)
from control_requests.nanopb_rules import read_option
from control_requests.testing import populate

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
PARTICLE_PROTOBUF = REPO / "tests/interop/node/node_modules/@particle/device-os-protobuf"

# Particle's files, split like fwsim's: control/wifi.proto (legacy Gen 2 Wi-Fi) declares
# particle.ctrl.INTERNAL, as control/storage.proto does, so it gets a pool of its own.
PARTICLE_MAIN = [
    "nanopb/nanopb.proto",
    "control/extensions.proto",
    "control/common.proto",
    "control/config.proto",
    "control/cloud.proto",
    "control/wifi_new.proto",
    "control/network.proto",
    "control/network_old.proto",
    "control/storage.proto",
    "control/cellular.proto",
    "control/logging.proto",
    "control/mesh.proto",
    "cloud/describe.proto",
]
PARTICLE_LEGACY = ["control/wifi.proto"]

FWSIM_FILES: list[FileDescriptor] = [
    module.DESCRIPTOR
    for module in (
        common_pb2,
        config_pb2,
        cloud_pb2,
        wifi_pb2,
        network_pb2,
        network_legacy_pb2,
        storage_pb2,
        describe_pb2,
        cellular_pb2,
        logging_pb2,
        mesh_pb2,
        wifi_legacy_pb2,
    )
]

SEEDS = range(12)


def _toolchain_missing() -> str | None:
    if not (PARTICLE_PROTOBUF / "control" / "config.proto").is_file():
        return f"@particle/device-os-protobuf not installed in {PARTICLE_PROTOBUF.parent}"
    if importlib.util.find_spec("grpc_tools") is None:
        return "grpcio-tools not installed (pip install -e '.[dev-proto]')"
    return None


def _compile(sources: list[str], out: Path) -> descriptor_pool.DescriptorPool:
    import grpc_tools

    include = Path(grpc_tools.__file__).resolve().parent / "_proto"
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        "-Inanopb",
        "-I.",
        f"-I{include}",
        "--include_imports",
        f"--descriptor_set_out={out}",
        *sources,
    ]
    done = subprocess.run(
        command, cwd=PARTICLE_PROTOBUF, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:  # topologically ordered by protoc
        pool.AddSerializedFile(file.SerializeToString())
    return pool


@pytest.fixture(scope="module")
def particle_pools(
    tmp_path_factory: pytest.TempPathFactory,
) -> list[descriptor_pool.DescriptorPool]:
    reason = _toolchain_missing()
    if reason:
        pytest.skip(reason)
    scratch = tmp_path_factory.mktemp("particle-protobuf")
    return [
        _compile(PARTICLE_MAIN, scratch / "main.pb"),
        _compile(PARTICLE_LEGACY, scratch / "legacy.pb"),
    ]


def _find(pools: list[descriptor_pool.DescriptorPool], full_name: str, enum: bool = False) -> Any:
    for pool in pools:
        try:
            if enum:
                return pool.FindEnumTypeByName(full_name)
            return pool.FindMessageTypeByName(full_name)
        except KeyError:
            continue
    raise AssertionError(f"Particle's .proto files do not define {full_name}")


def _particle_messages(pools: list[descriptor_pool.DescriptorPool]) -> Iterator[Descriptor]:
    """Top-level messages of Particle's content files (not nanopb.proto / extensions.proto)."""
    for pool, sources in zip(pools, (PARTICLE_MAIN, PARTICLE_LEGACY), strict=True):
        for source in sources:
            if source.startswith(("control/", "cloud/")) and source != "control/extensions.proto":
                yield from pool.FindFileByName(source).message_types_by_name.values()


def _fwsim_messages() -> Iterator[Descriptor]:
    for file in FWSIM_FILES:
        yield from file.message_types_by_name.values()


def _fwsim_enums() -> Iterator[EnumDescriptor]:
    for file in FWSIM_FILES:
        yield from file.enum_types_by_name.values()


def _options(descriptor: Any) -> bytes:
    return descriptor.GetOptions().SerializeToString(deterministic=True)


def _enum_shape(enum: EnumDescriptor) -> dict[str, Any]:
    return {
        "name": enum.full_name,
        "options": _options(enum),
        "values": sorted(
            (
                value.number,
                value.name,
                read_option(value.GetOptions(), extensions_pb2.int_value),
                _options(value),
            )
            for value in enum.values
        ),
    }


def _message_shape(message: Descriptor) -> dict[str, Any]:
    fields = []
    for field in sorted(message.fields, key=lambda item: item.number):
        fields.append(
            {
                "number": field.number,
                "name": field.name,
                "json_name": field.json_name,
                "type": field.type,
                "repeated": field.is_repeated,
                "presence": field.has_presence,
                "message": field.message_type.full_name if field.message_type else None,
                "enum": field.enum_type.full_name if field.enum_type else None,
                "oneof": field.containing_oneof.name if field.containing_oneof else None,
                "nanopb": str(read_option(field.GetOptions(), nanopb_pb2.nanopb)),
                "options": _options(field),
            }
        )
    return {
        "name": message.full_name,
        "options": _options(message),
        "type_id": read_option(message.GetOptions(), extensions_pb2.type_id),
        "fields": fields,
        "oneofs": sorted((o.name, sorted(f.name for f in o.fields)) for o in message.oneofs),
        "nested": sorted(
            (_message_shape(nested) for nested in message.nested_types), key=lambda s: s["name"]
        ),
        "enums": sorted(
            (_enum_shape(enum) for enum in message.enum_types), key=lambda s: s["name"]
        ),
    }


MESSAGE_NAMES = sorted(message.full_name for message in _fwsim_messages())
ENUM_NAMES = sorted(enum.full_name for enum in _fwsim_enums())


def _fwsim_message(full_name: str) -> Descriptor:
    for pool in (descriptor_pool.Default(), _isolated_pool.POOL):
        try:
            return pool.FindMessageTypeByName(full_name)
        except KeyError:
            continue
    raise AssertionError(full_name)


def test_fwsim_defines_every_control_message(
    particle_pools: list[descriptor_pool.DescriptorPool],
) -> None:
    particle = {message.full_name for message in _particle_messages(particle_pools)}
    assert particle == set(MESSAGE_NAMES)


@pytest.mark.parametrize("full_name", MESSAGE_NAMES)
def test_message_shape_matches(
    particle_pools: list[descriptor_pool.DescriptorPool], full_name: str
) -> None:
    assert _message_shape(_fwsim_message(full_name)) == _message_shape(
        _find(particle_pools, full_name)
    )


@pytest.mark.parametrize("full_name", ENUM_NAMES)
def test_enum_shape_matches(
    particle_pools: list[descriptor_pool.DescriptorPool], full_name: str
) -> None:
    ours = next(enum for enum in _fwsim_enums() if enum.full_name == full_name)
    assert _enum_shape(ours) == _enum_shape(_find(particle_pools, full_name, enum=True))


def _json(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


@pytest.mark.parametrize("full_name", MESSAGE_NAMES)
def test_bytes_decode_identically_both_ways(
    particle_pools: list[descriptor_pool.DescriptorPool], full_name: str
) -> None:
    ours = message_factory.GetMessageClass(_fwsim_message(full_name))
    theirs = message_factory.GetMessageClass(_find(particle_pools, full_name))
    for seed in SEEDS:
        for source, target in ((ours, theirs), (theirs, ours)):
            original = populate(source, random.Random(seed), within_nanopb_limits=False)
            data = original.SerializeToString(deterministic=True)
            decoded = target.FromString(data)
            assert decoded.SerializeToString(deterministic=True) == data, (seed, source)
            assert _json(decoded) == _json(original), (seed, source)
            assert len(unknown_fields.UnknownFieldSet(decoded)) == 0, (seed, source)


def test_type_ids_match(particle_pools: list[descriptor_pool.DescriptorPool]) -> None:
    def type_ids(messages: Iterator[Descriptor]) -> dict[str, int]:
        found = {}
        for message in messages:
            value = read_option(message.GetOptions(), extensions_pb2.type_id)
            if value is not None:
                found[message.full_name] = int(value)
        return found

    particle = type_ids(_particle_messages(particle_pools))
    assert type_ids(_fwsim_messages()) == particle
    assert len(particle) == len(codec.message_pairs())
    # The codec serves each request message under Particle's number, except where Device OS
    # and particle-usb's request.js use another one (documented in TYPE_ID_CORRECTIONS).
    for full_name, type_id in particle.items():
        number = codec.TYPE_ID_CORRECTIONS.get(full_name, type_id)
        assert codec.request_class(number).DESCRIPTOR.full_name == full_name
