"""Stand-in for aws_lambda_powertools: Logger, Tracer and Metrics that do nothing.

The original creates one of each at import time and decorates its store functions with
``tracer.capture_method``; nothing else is called on a request.
"""

import functools
import logging as _stdlib_logging  # this package has its own .logging


class Logger:
    def __init__(self, service=None, level=None, **kwargs):
        self.service = service
        self._log = _stdlib_logging.getLogger(service or "service")

    def debug(self, msg, *args, **kwargs):
        self._log.debug(msg, *args)

    def info(self, msg, *args, **kwargs):
        self._log.info(msg, *args)

    def warning(self, msg, *args, **kwargs):
        self._log.warning(msg, *args)

    def error(self, msg, *args, **kwargs):
        self._log.error(msg, *args)

    def exception(self, msg, *args, **kwargs):
        self._log.exception(msg, *args)

    def append_keys(self, **kwargs):
        pass

    def inject_lambda_context(self, lambda_handler=None, **kwargs):
        if lambda_handler is None:
            return lambda fn: fn
        return lambda_handler


class Tracer:
    def __init__(self, service=None, **kwargs):
        self.service = service

    def capture_method(self, method=None, **kwargs):
        """Usable as @tracer.capture_method and @tracer.capture_method(...)."""
        if method is None:
            return lambda fn: self.capture_method(fn)

        @functools.wraps(method)
        def wrapper(*args, **kw):
            return method(*args, **kw)
        return wrapper

    def capture_lambda_handler(self, lambda_handler=None, **kwargs):
        if lambda_handler is None:
            return lambda fn: fn
        return lambda_handler

    def put_annotation(self, key, value):
        pass

    def put_metadata(self, key, value, namespace=None):
        pass


class Metrics:
    def __init__(self, namespace=None, service=None, **kwargs):
        self.namespace = namespace
        self.service = service

    def add_metric(self, name, unit, value):
        pass

    def add_dimension(self, name, value):
        pass

    def log_metrics(self, lambda_handler=None, **kwargs):
        if lambda_handler is None:
            return lambda fn: fn
        return lambda_handler
