"""The JMESPath expressions Powertools names (only imported by the original, never used)."""

API_GATEWAY_REST = "requestContext.requestId"
API_GATEWAY_HTTP = "requestContext.requestId"
APPLICATION_LOAD_BALANCER = 'headers."x-amzn-trace-id"'
EVENT_BRIDGE = "id"
