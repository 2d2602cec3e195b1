/*
 * validate — request bodies and query parameters checked the way FastAPI and
 * pydantic v2 do it (the version the original's unpinned requirements install
 * today), so clients of the original get the same 422 shape and vocabulary:
 *
 *     {"detail": [{"type": "int_parsing", "loc": ["body", "ttl"],
 *                  "msg": "Input should be a valid integer, unable to parse string as an integer",
 *                  "input": "soon"}, ...]}
 *
 * Each item has pydantic's `type`, `loc`, `msg` and `input` (the value that
 * failed; the whole body for a missing field; left out when its JSON text
 * would pass VALIDATE_INPUT_MAX bytes), and `ctx` where pydantic has one
 * (`expected` of a literal, `ge`/`le` of a bound, `error` of a JSON decode or
 * value error). Every bad field is reported, not just the first. Errors
 * collect in a validation list; validation_body() renders the whole 422 body.
 */
#ifndef TASKD_VALIDATE_H
#define TASKD_VALIDATE_H

#include "config.h"
#include "sbuf.h"
#include "task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * How deep `data` and `result` may nest (objects and arrays): DynamoDB allows
 * 32 levels counting the item's own attribute, so a value may nest 31. Kept in
 * both modes, so that a task taskd accepts can also be stored, streamed and
 * published on AWS, and no change record is too deep to read back.
 */
#define VALIDATE_MAX_DEPTH 31

/* The most characters (Unicode code points, as pydantic counts) a `status_msg` may have. */
#define VALIDATE_STATUS_MSG_MAX 4096

/* The longest `input` echoed back in an error item, in bytes of JSON. */
#define VALIDATE_INPUT_MAX 4096

/* Collected validation errors. */
typedef struct validation {
    sbuf items; /* comma-separated detail items, without brackets */
    int count;
} validation;

/*
 * Record one error at loc [where, field] (field NULL: [where]) with
 * pydantic's type and msg; input and ctx are JSON texts (a value and an
 * object), each left out when NULL.
 */
void validation_add(validation *v, const char *where, const char *field, const char *type,
                    const char *msg, const char *input, const char *ctx);
/*
 * Record a literal_error at [where, field]: value is none of the n names
 * ("Input should be 'A', 'B' or 'C'", ctx {"expected": ...}).
 */
void validation_literal(validation *v, const char *where, const char *field,
                        const char *const *names, size_t n, const char *value);
/* The 422 response body; the caller frees it. NULL when out of memory. */
char *validation_body(validation *v, size_t *len);
/* Release the collected errors. */
void validation_free(validation *v);

/* A valid POST /tasks body. */
typedef struct create_request {
    char task_type[TASK_TYPE_MAX + 1];
    char *data;       /* owned compact JSON object text */
    char *data_image; /* owned: the data as AttributeValue JSON, for change records */
    size_t data_size; /* the bytes DynamoDB counts for data_image (attrval_write's count) */
    int64_t ttl;      /* TASK_NULL_TIME when absent or null */
} create_request;

/* Check a POST /tasks body; true with *out filled, or false with errors in v. */
bool validate_create(const config *c, const char *body, size_t len, create_request *out,
                     validation *v);
void create_request_free(create_request *r);

/* A valid PATCH /tasks/{id} body. */
typedef struct update_request {
    task_status status;
    char *status_msg; /* owned; "" when absent */
    char *result;     /* owned JSON text, NULL when absent */
} update_request;

/* Check a PATCH body; true with *out filled, or false with errors in v. */
bool validate_update(const char *body, size_t len, update_request *out, validation *v);
void update_request_free(update_request *r);

/*
 * Parse the limit query parameter: NULL means the default (10); otherwise an
 * integer from 1 to 100, read as pydantic v2 reads an int from a string (" 5",
 * "+5", "5.0" and "4_2" are integers; "5.5", "1e2" and "0x5" are not). Records
 * an error in v and returns false.
 */
bool validate_limit(const char *s, int *out, validation *v);

#define VALIDATE_WAIT_MAX 60 /* seconds */

/*
 * Parse the wait query parameter of GET /tasks/{id}: NULL means no wait (0);
 * otherwise an integer read as validate_limit() reads one, 1 to
 * VALIDATE_WAIT_MAX seconds.
 * Records an error in v and returns false.
 */
bool validate_wait(const char *s, int *out, validation *v);

#endif
