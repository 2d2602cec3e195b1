/*
 * sns_reply — reading the XML reply of one PublishBatch call (sns.h): which
 * of the call's messages SNS published, with their MessageIds, and which it
 * failed, with their Code, Message and SenderFault. Pure: xml.h's scanner
 * over the bytes given, no network.
 *
 * The reply, as SNS writes it:
 *   <PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
 *     <PublishBatchResult>
 *       <Successful><member><Id>0</Id><MessageId>…</MessageId></member>…</Successful>
 *       <Failed><member><Id>1</Id><Code>…</Code><Message>…</Message>
 *         <SenderFault>true</SenderFault></member>…</Failed>
 *     </PublishBatchResult>
 *     <ResponseMetadata><RequestId>…</RequestId></ResponseMetadata>
 *   </PublishBatchResponse>
 * An entry's Id is the message's index in the caller's array, in decimal
 * (sns.c writes it so).
 */
#ifndef TASKD_SNS_REPLY_H
#define TASKD_SNS_REPLY_H

#include "sns.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * Read the reply body[0..len) (not necessarily NUL-terminated; nothing past
 * it is read) of a call that carried messages [first, first + k) of st, k at
 * most SNS_BATCH_MAX, of which message first + j went out when sent[j].
 *
 * Where: the content of the first <PublishBatchResult> (the whole body when
 * there is none), in it the first <Successful> and then the first <Failed>
 * list, in each its <member> elements one after the other. A member names
 * message i when the whole text of its first <Id> — surrounding white space
 * (space, tab, CR, LF, as written) dropped, entities decoded — is 1 to 9
 * decimal digits of a number i in [first, first + k), not when they are
 * only its first bytes (a NUL byte or more text after them). A member that
 * names no message of the call, or one whose message did not go out
 * (!sent[j]) or is done already (done[j]: an earlier member named it), is
 * passed over.
 *
 * Every message i = first + j a member names gets done[j] = true and its
 * status st[i] set anew (zeroed first: sent and request_id are the caller's
 * to fill); its text fields are the elements' text, surrounding white space
 * dropped, entities decoded, and, when longer than the field, cut where a
 * UTF-8 character ends and ended "..." (errbuf_set(), core/errbuf.h):
 *   - Successful: ok, message_id the <MessageId> ("" without one);
 *   - Failed: not ok, code the <Code> ("Failed" when it is missing or
 *     empty), message the <Message> ("SNS did not publish the message" when
 *     missing or empty), sender_fault when <SenderFault>'s whole text is
 *     "true".
 * Nothing else is written: not done[j] or st[first + j] of a message no
 * member names, nor any status outside the call's.
 */
void sns_reply_read(const char *body, size_t len, size_t first, size_t k, const bool *sent,
                    bool *done, sns_status *st);

#endif
