"""``fwsim control list``: control-request types and their support per platform profile."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("control", help="control-request types",
                            description="Device OS control requests as fwsim simulates them.")
    cmds = parser.add_subparsers(dest="control_command", metavar="SUBCOMMAND")
    cmds.required = True
    lst = cmds.add_parser("list", help="request types with support per profile",
                          description="List every control-request type with its Device OS "
                          "number and, per platform profile, what the simulated device "
                          "answers: 'yes' (handled), 'NOT_SUPPORTED' (known, not supported "
                          "on that platform), 'app' (not handled by Device OS: forwarded to the "
                          "application's handler, NOT_SUPPORTED without one).")
    lst.set_defaults(handler=_list)


def support_matrix() -> list[tuple[int, str, str, dict[str, str]]]:
    from control_requests.handlers import HANDLERS, SUPPORTED
    from control_requests.types import DOS_6_2_UNIMPLEMENTED, RequestType, dos_status

    rows = []
    for request_type in RequestType:
        if request_type is RequestType.INVALID:
            continue
        cells = {}
        for profile, supported in SUPPORTED.items():
            if request_type is RequestType.APP_CUSTOM or request_type in DOS_6_2_UNIMPLEMENTED:
                cells[profile] = "app"
            elif request_type in supported and request_type in HANDLERS:
                cells[profile] = "yes"
            else:
                cells[profile] = "NOT_SUPPORTED"
        rows.append((int(request_type), request_type.name, dos_status(request_type).value,
                     cells))
    return rows


def _list(args: argparse.Namespace) -> int:
    from control_requests.handlers import SUPPORTED

    profiles = list(SUPPORTED)
    rows = support_matrix()
    name_width = max(len(name) for _, name, _, _ in rows)
    header = f"{'type':>5}  {'name':<{name_width}}  {'DOS 6.2':<13}" + "".join(
        f"  {p:<13}" for p in profiles)
    print(header.rstrip())
    for number, name, status, cells in rows:
        line = f"{number:>5}  {name:<{name_width}}  {status:<13}" + "".join(
            f"  {cells[p]:<13}" for p in profiles)
        print(line.rstrip())
    return 0
