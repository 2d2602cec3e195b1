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

/* Append v as an AttributeValue: S, N, BOOL, NULL, M or L. */
void attrval_write(sbuf *b, const json_t *v);

/*
 * The plain JSON value of an AttributeValue (S, N, BOOL, NULL, M, L, SS,
 * NS); NULL if v is not a well-formed AttributeValue, or when out of memory
 * (errno ENOMEM then: clear errno before the call to tell the two apart). New
 * reference.
 */
json_t *attrval_to_json(const json_t *v);

/* The AttributeValue text of JSON text (malloc'ed); NULL if not JSON or out of memory. */
char *attrval_from_text(const char *json_text);
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
