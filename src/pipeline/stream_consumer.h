/*
 * stream_consumer — a thread that reads the local change stream for one
 * configured consumer: records in sequence order from its checkpoint, in
 * batches. Each record goes through the publisher (publisher.h: filter
 * patterns, message, spans, routes); the batch's messages reach their
 * queues and the checkpoint moves in one transaction. A record that cannot
 * be read goes into a batch of its own (the records before it are published
 * first); it is retried (maximum_retry_attempts), then logged and skipped, as
 * Lambda's maximumRetryAttempts does. A write that fails is retried until
 * it succeeds: the store's trouble never makes a record skipped.
 */
#ifndef TASKD_STREAM_CONSUMER_H
#define TASKD_STREAM_CONSUMER_H

#include "core/config.h"
#include "store/broker.h"
#include "trace/trace.h"

typedef struct stream_consumer stream_consumer;

/* Start the consumer's thread; NULL with a reason in err. */
stream_consumer *stream_consumer_start(broker *b, const config *c, const consumer_config *cc,
                                       const telemetry *tel, char *err, size_t errlen);
/* Stop after the batch in hand and free. */
void stream_consumer_stop(stream_consumer *sc);

#endif
