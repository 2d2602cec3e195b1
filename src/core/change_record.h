/*
 * change_record — the JSON of one change record, shaped like a DynamoDB
 * Streams record, so the same filter patterns and the same
 * publisher code serve the local change log and a real DynamoDB stream.
 */
#ifndef TASKD_CHANGE_RECORD_H
#define TASKD_CHANGE_RECORD_H

#include "sbuf.h"

#include <stdint.h>

/*
 * Append the record: eventID, eventName (INSERT / MODIFY / REMOVE),
 * eventSource, and dynamodb {Keys, NewImage, OldImage, SequenceNumber,
 * ApproximateCreationDateTime, StreamViewType}. Images are AttributeValue
 * JSON text (attrval_task_image), either may be NULL.
 */
void change_record_write(sbuf *b, int64_t seq, const char *event, const char *task_id,
                         const char *new_image, const char *old_image, int64_t time);

#endif
