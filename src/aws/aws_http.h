/*
 * aws_http — one small client for the AWS APIs the adapters call: DynamoDB
 * and SQS (AWS JSON 1.0: POST / with X-Amz-Target) and SNS (Query: a form
 * POST with an XML reply), over libcurl, signed with CURLOPT_AWS_SIGV4.
 *
 * Configuration comes from the environment, as the AWS SDKs read it:
 *   AWS_REGION (else AWS_DEFAULT_REGION, else us-east-1),
 *   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (sent and
 *   signed as X-Amz-Security-Token),
 *   AWS_ENDPOINT_URL, then AWS_ENDPOINT_URL_<SERVICE> (DYNAMODB, SNS, SQS)
 *   wins; with neither, https://<service>.<region>.amazonaws.com/
 *   (amazonaws.com.cn for the cn- regions). An endpoint's path may hold
 *   only unreserved characters and single '/' (others would be signed wrong).
 * aws_client_new() reads it and opens no connection; connections are made
 * on first use and kept for reuse across calls (one libcurl handle per
 * concurrent caller, pooled).
 *
 * Every call is bounded by a deadline: the caller's, else the calling
 * thread's (aws_set_deadline(), which the Lambda runtime sets for each
 * invocation), else AWS_DEFAULT_CALL_MS from now. Throttling, 5xx and
 * connection errors are retried with exponential backoff and full jitter,
 * never past the deadline. X-Amzn-Trace-Id is never added to a request
 * (it would be signed, and intermediaries may change it).
 *
 * Safe to call from many threads at once.
 */
#ifndef TASKD_AWS_HTTP_H
#define TASKD_AWS_HTTP_H

#include "core/span.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Budget of a call when neither the caller nor the thread set a deadline. */
#define AWS_DEFAULT_CALL_MS 10000
/* Requests one call makes at most, its retries included. */
#define AWS_MAX_ATTEMPTS 10

typedef enum aws_rc {
    AWS_OK = 0,          /* 2xx; the body is the service's answer */
    AWS_ERR_CLIENT,      /* a 4xx that retrying will not fix; see error_type / error_message */
    AWS_ERR_THROTTLED,   /* still throttled when the deadline came */
    AWS_ERR_UNAVAILABLE, /* 5xx or no connection, still when the deadline came */
    AWS_ERR_TIMEOUT,     /* the deadline passed before an answer */
    AWS_ERR_NOMEM,
} aws_rc;

typedef enum aws_service {
    AWS_DYNAMODB,
    AWS_SNS,
    AWS_SQS,
} aws_service;

/* The outcome of one call (after retries); aws_response_free() releases it. */
typedef struct aws_response {
    long status; /* HTTP status of the last attempt; 0 when none answered */
    char *body;  /* owned, NUL-terminated; NULL when there was none */
    size_t body_len;
    char error_type[128]; /* "ConditionalCheckFailedException": __type after '#', or SNS <Code> */
    char *error_message;  /* owned: "message" / "Message" / <Message>; for an error answer
                             without one, its HTTP status ("HTTP 503 with no body"); libcurl's
                             reason when no answer came; NULL for a success (or out of memory) */
    int attempts;         /* requests sent */
    /* the service's id of the request, from the last answer's x-amzn-RequestId (or
     * x-amzn-request-id, x-amz-request-id) header; "" when no answer came or it named none */
    char request_id[64];
    /* the service may have acted on a request whose outcome no answer told, whatever rc says
     * of the last attempt (a create may have been made): an attempt went out whole and was
     * answered 5xx or not at all (the deadline cut a retry short, a connection was lost), and
     * the call still ended throttled, unavailable or timed out */
    bool unanswered;
    /* error_message is the HTTP status's own words (an error answer that gave no message): a
     * caller that gives the status beside the message need not give it again */
    bool message_is_status;
} aws_response;

typedef struct aws_client aws_client;

/*
 * A client for one service from the environment; NULL with a one-line reason
 * in err (no credentials, a malformed endpoint URL, out of memory).
 */
aws_client *aws_client_new(aws_service service, char *err, size_t errlen);
/* Free the client and its idle connections; no call may be in flight. */
void aws_client_free(aws_client *c);
/* The endpoint URL calls go to, e.g. "http://127.0.0.1:8000/" (for logs). */
const char *aws_client_endpoint(const aws_client *c);
/* The region the client signs for. */
const char *aws_client_region(const aws_client *c);
/*
 * Label sp as a call to service's method through c, as OpenTelemetry's AWS SDK conventions name
 * one: rpc.system "aws-api", rpc.service, rpc.method (both static strings), cloud.region, and
 * aws.request_id when request_id is not "".
 */
void aws_span_call(span *sp, const aws_client *c, const char *service, const char *method,
                   const char *request_id);

/* Set (epoch ms, CLOCK_REALTIME) or clear (0) the calling thread's deadline. */
void aws_set_deadline(int64_t deadline_ms);
/* The calling thread's deadline, or 0. */
int64_t aws_deadline(void);

/*
 * AWS JSON 1.0 call: POST / with X-Amz-Target: target (e.g.
 * "DynamoDB_20120810.GetItem"), body as given. deadline_ms 0: the thread's.
 */
aws_rc aws_json_call(aws_client *c, const char *target, const char *body, size_t body_len,
                     int64_t deadline_ms, aws_response *out);
/*
 * Query call: POST / with the form body ("Action=Publish&Version=2010-03-31&...").
 * Both calls fill out (which may be NULL) on success and on error alike.
 */
aws_rc aws_query_call(aws_client *c, const char *form, size_t form_len, int64_t deadline_ms,
                      aws_response *out);
void aws_response_free(aws_response *r);

/* Human-readable name of a return code, for logs. */
const char *aws_rc_name(aws_rc rc);
/* Is this error type (from a 400 answer) throttling, to be retried? */
bool aws_error_is_throttling(const char *error_type);
/*
 * The backoff before retry number attempt (1, 2, ...): full jitter over
 * min(cap_ms, base_ms * 2^(attempt-1)); rnd is a uniform random 32-bit value.
 */
int64_t aws_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, uint32_t rnd);
/*
 * The calls' own retry policy, for a caller that retries a request itself (a
 * throttling the service answers as a client error, such as a DynamoDB
 * transaction cancelled for throttling). After attempts requests (1, 2, ...),
 * sleeps the backoff a call would sleep before its next attempt and returns
 * true; returns false at once when a call would stop instead: AWS_MAX_ATTEMPTS
 * requests made, or the sleep and the shortest attempt would pass deadline_ms.
 */
bool aws_retry_pause(int attempts, int64_t deadline_ms);

#endif
