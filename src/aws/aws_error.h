/*
 * aws_error — what an AWS error answer says went wrong (aws_http.h's
 * error_type and error_message): the error type as aws_response keeps one,
 * and the XML error body of the Query protocol (SNS, SQS's older answers).
 * Pure: xml.h's scanner over the bytes given, no network.
 *
 * The XML error body, as SNS writes it:
 *   <ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
 *     <Error><Type>Sender</Type><Code>InvalidParameter</Code>
 *       <Message>Invalid parameter: …</Message></Error>
 *     <RequestId>…</RequestId>
 *   </ErrorResponse>
 */
#ifndef TASKD_AWS_ERROR_H
#define TASKD_AWS_ERROR_H

#include <stddef.h>

/*
 * The error type named by s[0..n) into type (typelen > 0 bytes),
 * NUL-terminated: the part before the first stop byte in it (all of it when
 * there is none), after the last '#' in that part
 * ("com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"),
 * without surrounding white space (space, tab, CR, LF: a <Code> may be
 * written on a line of its own), cut to its first typelen - 1 bytes.
 * Used for a JSON body's __type (stop ':'), the x-amzn-query-error header
 * (';'), x-amzn-errortype (':') and an XML body's <Code>.
 */
void aws_error_type(char *type, size_t typelen, const char *s, size_t n, char stop);

/*
 * Read the XML error body body[0..len) (not necessarily NUL-terminated;
 * nothing past it is read): the first <Code> and the first <Message> in the
 * content of the first <Error> element, or in the whole body when there is
 * none (or that first one is not closed, as xml_find() says).
 *   - <Code>: its text with the entities decoded (xml.h), up to its first
 *     NUL byte, into type through aws_error_type() ('\0' the stop); type is
 *     left as it was when there is no <Code>, or no memory to decode it.
 *   - <Message>: *message (NULL before: it is not freed) becomes a
 *     malloc'ed NUL-terminated copy of its text with the entities decoded
 *     (the caller frees it), NULL when out of memory; *message is left as it
 *     was when there is no <Message>.
 */
void aws_error_read_xml(const char *body, size_t len, char *type, size_t typelen, char **message);

#endif
