/*
 * sns — publishing messages to an SNS topic over aws_http: the Query
 * protocol's PublishBatch (Version 2010-03-31), up to SNS_BATCH_MAX messages
 * and SNS_BATCH_BYTES per call, with the outcome of every message read from
 * the XML reply.
 *
 * A message is a UTF-8 body and its attributes as the publisher writes them,
 * {"TaskId": {"Type": "String", "Value": "..."}, ...}; each becomes
 * PublishBatchRequestEntries.member.N.MessageAttributes.entry.M.Name /
 * .Value.DataType / .Value.StringValue (.Value.BinaryValue for the Binary
 * types, whose value is base64 text), every form value percent-encoded as
 * RFC 3986 says (only A-Z a-z 0-9 - . _ ~ stay as they are).
 *
 * Order. sns_publish_batch() sends its messages in order, in as many calls
 * as they need, one call after the other; the first call in which any
 * message failed is the last one: the messages after it are not sent
 * (SNS_NOT_SENT). The halves of a call split for its length (below) are
 * calls of their own, but what the checks before sending refuse (below)
 * stops none of them, as it stops no other message of its call. A caller
 * that must keep order — a stream consumer reporting its first failed
 * record — gets a clean cut; a message after a failed one in the same call
 * may still have been published.
 *
 * Failures. A call that fails as a whole (after aws_http's retries of
 * throttling, 5xx and lost connections, within the deadline) fails each of
 * its messages with SNS's error code and message (e.g. NotFound, "Topic does
 * not exist") or with the transport's reason; SNS's per-message failures
 * (<Failed> members: Id, Code, Message, SenderFault) fail just theirs; a
 * message the reply does not mention failed too. A call of several messages
 * refused as too long (BatchRequestTooLong: together over the topic's size
 * limit, which a topic's MaximumMessageSize may set below SNS_BATCH_BYTES) is
 * made again as its two halves, one after the other, and so on down to
 * single messages; a call that carried one message and is refused as too
 * long (the message alone is over the limit) refuses that message, as an
 * entry's InvalidParameter does. A message taskd can tell is
 * unpublishable — an empty body, a body that is not UTF-8, attributes that
 * are not in the shape above — fails without being sent and does not stop
 * the others of its call. A message that went out, published or not, says
 * so, with its call's request id (for its span).
 */
#ifndef TASKD_SNS_H
#define TASKD_SNS_H

#include "aws_http.h"
#include "core/sbuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Messages in one PublishBatch call, at most (SNS's limit). */
#define SNS_BATCH_MAX 10
/* Bytes of the messages (bodies and attributes) of one call, at most (SNS's limit). */
#define SNS_BATCH_BYTES 262144

/* Codes taskd gives to failures SNS did not name. */
#define SNS_NOT_SENT      "NotSent"        /* an earlier call of the same batch failed */
#define SNS_NO_OUTCOME    "NoOutcome"      /* the reply did not mention the message */
#define SNS_INVALID_LOCAL "InvalidMessage" /* refused before sending (see above) */
#define SNS_UNREADABLE    "UnreadableReply"

/* One message to publish; both strings are borrowed for the call. */
typedef struct sns_message {
    const char *body;            /* non-empty UTF-8 text */
    const char *attributes_json; /* {"Name": {"Type": "String", "Value": "..."}, ...}; NULL: none */
} sns_message;

/* What became of one message. */
typedef struct sns_status {
    bool ok;             /* SNS accepted it */
    bool sender_fault;   /* when failed: SNS said the request was at fault (retrying won't help) */
    bool refused;        /* when failed: this very message is invalid (SNS's InvalidParameter,
                          * InvalidParameterValue or ValidationException for its entry, with
                          * SenderFault; BatchRequestTooLong for a call that carried it alone,
                          * too large by itself; or the checks before sending): it can never go
                          * out as it is, where other sender faults (a permission, a KMS key, the
                          * whole call's) may be mended */
    char message_id[96]; /* when ok: SNS's MessageId ("" when the reply gave none) */
    char code[64];       /* when failed: SNS's error code, or one of the SNS_* codes above */
    char message[256];   /* when failed: what went wrong, for logs and spans */
    bool sent;           /* it went out in a PublishBatch request, whatever became of it */
    char request_id[64]; /* when sent: that call's request id ("" when no answer named one) */
} sns_status;

/*
 * How many of the first n messages go into one PublishBatch call: at most
 * SNS_BATCH_MAX whose bodies and attributes add up to at most
 * SNS_BATCH_BYTES; always at least one when n > 0 (a message too large
 * by itself goes alone, and SNS answers for it: BatchRequestTooLong, which
 * refuses it).
 */
size_t sns_batch_fit(const sns_message *m, size_t n);

/*
 * Publish m[0..n) to topic_arn, in order (see "Order"), each call bounded by
 * deadline_ms (epoch ms; 0: the thread's deadline, see aws_http.h). st[i]
 * tells what became of m[i]. true when every message was published.
 */
bool sns_publish_batch(aws_client *c, const char *topic_arn, const sns_message *m, size_t n,
                       int64_t deadline_ms, sns_status *st);

/*
 * Append s (len bytes) to b percent-encoded as RFC 3986 and SigV4 want:
 * A-Z a-z 0-9 - . _ ~ as they are, every other byte %XX in upper-case hex.
 * For Query forms built by hand (other actions, tests); failures show in
 * sbuf_failed(b).
 */
void sns_form_append(sbuf *b, const char *s, size_t len);

#endif
