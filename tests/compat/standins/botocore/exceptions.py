"""The two botocore exceptions a DynamoDB Table call can raise, as botocore spells them."""


class BotoCoreError(Exception):
    pass


class ParamValidationError(BotoCoreError):
    """A parameter of the wrong shape, refused before any request is sent."""

    def __init__(self, report):
        super().__init__("Parameter validation failed:\n%s" % report)
        self.report = report


class ClientError(Exception):
    """An error answer from the service (botocore.exceptions.ClientError)."""

    def __init__(self, error_response, operation_name):
        err = error_response.get("Error", {})
        super().__init__("An error occurred (%s) when calling the %s operation: %s"
                         % (err.get("Code"), operation_name, err.get("Message")))
        self.response = error_response
        self.operation_name = operation_name
