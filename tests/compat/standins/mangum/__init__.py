"""Stand-in for mangum: the original builds ``handler = Mangum(app)`` at import time.

Only the uvicorn server is exercised by the compatibility suite, so calling the handler
(a Lambda invocation) is refused.
"""


class Mangum:
    def __init__(self, app, lifespan="auto", **kwargs):
        self.app = app

    def __call__(self, event, context):
        raise RuntimeError("mangum stand-in: Lambda events are not served here")
