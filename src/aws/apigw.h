/*
 * apigw — the translation between API Gateway proxy events and the API
 * function: an event becomes an api_request, an api_response becomes the
 * JSON the Lambda function returns. Pure: no I/O, jansson and the core only.
 *
 * Two event shapes are read: the REST API proxy integration (payload 1.0,
 * also what an HTTP API sends with format 1.0) and the HTTP API payload
 * 2.0, told apart by "version": "2.0" or the presence of
 * requestContext.http. The API must see a request exactly as the local
 * HTTP server (http/http_server.c) would have shown it, so:
 *
 *   - Path: 1.0 `path` is already decoded and used as is; 2.0 `rawPath`
 *     (else requestContext.http.path) is percent-decoded like the local
 *     server: %XX becomes the byte, "+" stays, and "%00" stays encoded so a
 *     NUL can never cut a path short. Then a leading "/<stage>" segment is
 *     removed when requestContext.stage is set (and, in 2.0, is not
 *     "$default") and the path is "/<stage>" or starts with "/<stage>/".
 *     That covers the 2.0 rawPath of a named stage and a custom domain
 *     mapped with the stage name as base path. Consequence: a stage must
 *     not be named like a top-level route ("tasks", "queues", "health"...).
 *   - Query: looked up by the name as written ("LIMIT" is not "limit")
 *     and, for a repeated name, the last value wins, as the local server's
 *     lookup does and FastAPI did.
 *     1.0: the last element of multiValueQueryStringParameters, else
 *     queryStringParameters (values arrive decoded). 2.0: rawQueryString
 *     split on "&" and the first "=", "+" turned into a space and then
 *     percent-decoded like the path; a name without "=" has the value ""
 *     (as Starlette reads it), as locally. Only without rawQueryString are the
 *     2.0 queryStringParameters used, whose repeats API Gateway has already
 *     joined with commas.
 *   - Headers: looked up case-insensitively, first value wins (again what
 *     the local server's lookup returns). 1.0: the first element of a
 *     multiValueHeaders list, which wins over `headers`. 2.0: `headers` as
 *     given (API Gateway lower-cases names and joins repeats with commas),
 *     plus "cookie" made of the `cookies` array joined with "; ".
 *   - Body: a string or null (empty); with isBase64Encoded true it is
 *     decoded (standard alphabet, padding optional, nothing else allowed:
 *     invalid base64 rejects the event). It may hold NUL bytes: body_len
 *     counts them, and a terminator follows.
 *
 * A decoded NUL byte in the path, a header or a query value reaches the
 * API as "%00" — the local server leaves an encoded NUL so — and a NUL in
 * the method rejects the event, as does any field of the wrong type;
 * unknown fields are ignored. Work is linear in the event's size.
 *
 * Public prefix: what the client's path holds before the path the API
 * sees, so that a Location the API answers with ("/tasks/{id}", a trailing
 * slash's "/tasks?limit=1") names the same resource from the client's side.
 * 1.0: the part of requestContext.path before the API's path ("/dev" for
 * "/dev/tasks/" on the execute-api host; a custom domain's base path
 * mapping, or nothing without one); none when requestContext.path is
 * absent or does not end with the API's path. 2.0: the "/<stage>" removed
 * from rawPath (none on "$default"). A prefix is used only when it is "/"
 * and segments of characters a path segment holds unencoded (RFC 3986
 * pchar less "%"), none of them empty, "." or "..": an event can never make
 * it break a header or point at another host.
 *
 * Response: the same shape serves both payloads, {"statusCode", "headers",
 * "body", "isBase64Encoded"}. `headers` holds Content-Type (when the
 * response has one) and each api_header, a Location that starts with "/"
 * behind the request's public prefix; the API never repeats a header
 * name, so multiValueHeaders is never needed (a repeat would be dropped).
 * The body is sent as a string when it is valid UTF-8 without NUL bytes
 * (JSON, HTML, Prometheus text), otherwise base64 with isBase64Encoded
 * true (a REST API passes that on as binary only for its configured binary
 * media types). HEAD gets an empty body (the API answers it like GET);
 * 204 and 304 get an empty body and no Content-Type.
 */
#ifndef TASKD_APIGW_H
#define TASKD_APIGW_H

#include "api/api.h"

#include <stdbool.h>
#include <stddef.h>

struct apigw_data;

/*
 * A decoded API Gateway request. It owns everything req points to, and
 * req.ctx points at that owned data (not at this struct), so the struct
 * may be moved (copied, with only one copy freed); pass &r.req to the API.
 */
typedef struct apigw_request {
    api_request req;         /* method, path, query(), header(), body */
    int version;             /* payload format: 1 or 2 */
    const char *request_id;  /* requestContext.requestId; "" when absent */
    struct apigw_data *data; /* the owned strings and lookup tables */
} apigw_request;

/*
 * Parse an event (len bytes, need not be NUL-terminated) into out. false
 * with a one-line reason in err (err may be NULL) for text that is not
 * JSON, not an object, not an API Gateway proxy event, malformed, or when
 * out of memory, which *nomem then says (nomem may be NULL): the event's
 * fault or not; out is then empty (freeing it is harmless).
 */
bool apigw_request_parse(const char *event, size_t len, apigw_request *out, char *err,
                         size_t errlen, bool *nomem);

/* Release what a parse built and zero r (NULL is fine). */
void apigw_request_free(apigw_request *r);

/*
 * The Lambda response JSON for resp, malloc'ed, its length in *len (len
 * may be NULL); NULL when out of memory. r is the request answered (its
 * method, for HEAD, and its public prefix, for Location); NULL answers an
 * event that failed to parse.
 */
char *apigw_response_json(const apigw_request *r, const api_response *resp, size_t *len);

#endif
