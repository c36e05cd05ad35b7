"""Device OS services: logging."""

from .log import DeviceLog, LogLevel, format_log_line, log_lines

__all__ = ["DeviceLog", "LogLevel", "format_log_line", "log_lines"]
