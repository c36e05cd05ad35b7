"""The emulated cloud's REST API (FastAPI, served by uvicorn)."""

from .app import context_of, create_app
from .context import ApiConfig, ApiContext, NullRuntime, Runtime
from .errors import ApiError

__all__ = ["ApiConfig", "ApiContext", "ApiError", "NullRuntime", "Runtime", "context_of",
           "create_app"]
