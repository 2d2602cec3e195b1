/*
 * attrval — DynamoDB-typed JSON ("AttributeValue" form) for task images.
 *
 * Change records carry the task as DynamoDB Streams would ({"S": "..."},
 * {"N": "42"}, {"M": {...}}, ...), in both modes, so stream filter patterns
 * such as dynamodb.NewImage.task_type.S are portable between them.
 */
#ifndef TASKD_ATTRVAL_H
#define TASKD_ATTRVAL_H

#include "sbuf.h"
#include "task.h"

#include <jansson.h>
#include <stdbool.h>

/* The most bytes DynamoDB counts for a number (ATTRVAL_NUMBER_MAX), and for a map or a list
 * around its members or elements (each of which counts 1 more, and a member its name's bytes). */
#define ATTRVAL_NUMBER_MAX 21
#define ATTRVAL_NESTED     3

/*
 * Append v as an AttributeValue: S, N, BOOL, NULL, M or L. Returns the bytes DynamoDB counts for
 * what it wrote: a string's UTF-8 bytes, a number's attrval_number_size(), 1 for a BOOL or NULL,
 * and for a map or list ATTRVAL_NESTED and, for each member or element, 1, its name's bytes and
 * its value's. Once b has failed (out of memory) the count is not to be used.
 */
size_t attrval_write(sbuf *b, const json_t *v);
/*
 * The bytes DynamoDB counts for a number's text (len bytes, as an N holds it), at most: one for
 * each two of its significant digits (leading and trailing zeros aside), two, and one more for a
 * negative number; at most ATTRVAL_NUMBER_MAX. AWS gives the size only as about a byte for two
 * significant digits and one; DynamoDB Local counts the digits in pairs from the decimal point,
 * one more, and one more for a negative number, to ATTRVAL_NUMBER_MAX at most (docs/design.md):
 * neither is ever more than this count, which is at most one byte over DynamoDB Local's.
 */
size_t attrval_number_size(const char *text, size_t len);

/*
 * The plain JSON value of an AttributeValue (S, N, BOOL, NULL, M, L, SS,
 * NS); NULL if v is not a well-formed AttributeValue, or when out of memory
 * (errno ENOMEM then: clear errno before the call to tell the two apart). New
 * reference.
 */
json_t *attrval_to_json(const json_t *v);

/* The AttributeValue text of JSON text (malloc'ed), and in *size (unless NULL) the bytes
 * DynamoDB counts for it (attrval_write's); NULL if not JSON or out of memory. */
char *attrval_from_text(const char *json_text, size_t *size);
/* Append the AttributeValue of JSON text; false if the text is not JSON (nothing appended). Out
 * of memory marks b failed, as an append that runs out does. */
bool attrval_append_text(sbuf *b, const char *json_text);

/*
 * Append the item image of a task: id, task_type, status, status_msg and
 * created_time always; updated_time, ttl, data, result, trace and tracestate when set
 * (absent attributes are left out, as DynamoDB does). data_image is the
 * AttributeValue of the data when the caller has it (else it is derived from
 * t->data). False if the stored data or result text is not JSON; out of memory, there as
 * anywhere, marks b failed.
 */
bool attrval_task_image(sbuf *b, const task *t, const char *data_image);
/*
 * Append image, an item image without the attributes a task never changes
 * once created (data and trace: how the change log kept a MODIFY in schemas 5
 * and 6), with data (its AttributeValue text) and trace (NULL: none) put back.
 */
void attrval_image_restore(sbuf *b, const char *image, const char *data_image, const char *trace);

#endif
