"""The emulated cloud's REST API (FastAPI, served by uvicorn)."""

from ..runtime import NullRuntime, Runtime
from .app import context_of, create_app
from .context import ApiConfig, ApiContext
from .errors import ApiError
from .guard import AdminAccess, HostPolicy

__all__ = ["AdminAccess", "ApiConfig", "ApiContext", "ApiError", "HostPolicy", "NullRuntime",
           "Runtime", "context_of", "create_app"]
