"""ThingsBoard's error codes and the exceptions of the service (docs/thingsboard.md, B11).

Every REST error is ``ThingsboardErrorResponse`` JSON: ``{"status", "message", "errorCode",
"timestamp"}``; :class:`TbError` carries the first three and the HTTP layer adds the timestamp.
"""

from __future__ import annotations

from enum import IntEnum

from firmware_sim.kernel.errors import FwSimError


class ErrorCode(IntEnum):
    GENERAL = 2
    AUTHENTICATION = 10
    JWT_TOKEN_EXPIRED = 11
    CREDENTIALS_EXPIRED = 15
    PERMISSION_DENIED = 20
    INVALID_ARGUMENTS = 30
    BAD_REQUEST_PARAMS = 31
    ITEM_NOT_FOUND = 32
    TOO_MANY_REQUESTS = 33


class TbError(FwSimError):
    def __init__(self, status: int, message: str, code: ErrorCode) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def not_found() -> TbError:
    return TbError(404, "Requested item wasn't found!", ErrorCode.ITEM_NOT_FOUND)


def permission_denied() -> TbError:
    return TbError(403, "You don't have permission to perform this operation!",
                   ErrorCode.PERMISSION_DENIED)


def authentication_failed(message: str = "Authentication failed") -> TbError:
    return TbError(401, message, ErrorCode.AUTHENTICATION)


def token_expired() -> TbError:
    return TbError(401, "Token has expired", ErrorCode.JWT_TOKEN_EXPIRED)


def bad_request(message: str) -> TbError:
    return TbError(400, message, ErrorCode.BAD_REQUEST_PARAMS)


def invalid_argument(message: str) -> TbError:
    return TbError(400, message, ErrorCode.INVALID_ARGUMENTS)
