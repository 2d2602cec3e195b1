/*
 * standin_calls — calls that must succeed against the SNS/SQS stand-in
 * (fauxqs, FAUXQS_ENDPOINT), for the tests that set up a topic and a queue
 * there; a failure fails the test with AWS's error.
 */
#ifndef TASKD_STANDIN_CALLS_H
#define TASKD_STANDIN_CALLS_H

#include "aws/aws_http.h"
#include "core/sbuf.h"

#include <jansson.h>
#include <stddef.h>

/* A Query call (SNS) with form; the text of element tag of its reply into out. Frees form. */
void standin_query_ok(aws_client *c, sbuf *form, const char *tag, char *out, size_t outlen);
/* An SQS JSON call of action with req (taken); its answer (new reference). */
json_t *standin_sqs_ok(aws_client *c, const char *action, json_t *req);
/* A topic tasks-<suffix> and a queue task1-<suffix> (suffix: the pid and the time, apart from any
 * other run's) subscribed to it raw with the filter policy {"TaskType": ["TASK1"]}: the topic's
 * ARN into topic_arn, the queue's URL into queue_url. */
void standin_task1_subscription(aws_client *sns, aws_client *sqs, char topic_arn[256],
                                char queue_url[256]);
/* Delete what standin_task1_subscription() made (the topic with its subscription, the queue
 * with its messages), and check that fauxqs knows neither any more: the stand-in is the
 * CTest run's, shared. */
void standin_task1_delete(aws_client *sns, aws_client *sqs, const char *topic_arn,
                          const char *queue_url);
/* A String message attribute of an SQS message (asserted to be of type String). */
const char *standin_message_attribute(json_t *msg, const char *name);

#endif
