/*
 * openapi — the API description. The document is written as JSON text below
 * and completed at start-up with the configured task types; a test checks
 * that every documented operation is served and every served one documented.
 */
#include "openapi.h"

#include "core/json_util.h"

#include <jansson.h>
#include <stdlib.h>

static const char document[] =
    "{\"openapi\":\"3.0.3\","
    "\"info\":{\"title\":\"taskd\",\"version\":\"" TASKD_VERSION "\","
    "\"description\":\"Asynchronous task API: create tasks, follow their status.\"},"
    "\"paths\":{"
    "\"/\":{\"get\":{\"operationId\":\"dashboard\",\"summary\":\"The dashboard page\","
    "\"responses\":{\"200\":{\"description\":\"HTML\",\"content\":{\"text/html\":"
    "{\"schema\":{\"type\":\"string\"}}}}}}},"
    "\"/tasks/{task_id}/trace\":{\"parameters\":[{\"name\":\"task_id\",\"in\":\"path\","
    "\"required\":true,\"schema\":{\"type\":\"string\",\"format\":\"uuid\"}}],"
    "\"get\":{\"operationId\":\"getTaskTrace\",\"summary\":\"The task's spans, kept "
    "locally, in time order\",\"responses\":{\"200\":{\"description\":\"Spans\"},"
    "\"404\":{\"$ref\":\"#/components/responses/Error\"}}}},"
    "\"/tasks\":{"
    "\"get\":{\"operationId\":\"listTasks\",\"summary\":\"List tasks, newest first\","
    "\"parameters\":["
    "{\"name\":\"limit\",\"in\":\"query\",\"schema\":{\"type\":\"integer\",\"minimum\":1,"
    "\"maximum\":100,\"default\":10}},"
    "{\"name\":\"next_token\",\"in\":\"query\",\"schema\":{\"type\":\"string\"}},"
    "{\"name\":\"status\",\"in\":\"query\",\"schema\":{\"$ref\":\"#/components/schemas/Status\"}},"
    "{\"name\":\"task_type\",\"in\":\"query\","
    "\"schema\":{\"$ref\":\"#/components/schemas/TaskType\"}}],"
    "\"responses\":{\"200\":{\"description\":\"A page of tasks\",\"content\":{\"application/json\":"
    "{\"schema\":{\"$ref\":\"#/components/schemas/TaskList\"}}}},"
    "\"400\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"422\":{\"$ref\":\"#/components/responses/ValidationError\"},"
    "\"503\":{\"$ref\":\"#/components/responses/Error\"}}},"
    "\"post\":{\"operationId\":\"createTask\",\"summary\":\"Create a task\","
    "\"parameters\":[{\"name\":\"Idempotency-Key\",\"in\":\"header\",\"schema\":{\"type\":"
    "\"string\","
    "\"maxLength\":255},\"description\":\"Repeat-safe creation: a key used in the last 24 h "
    "returns the first task's id with 200\"}],"
    "\"requestBody\":{\"required\":true,\"content\":{\"application/json\":"
    "{\"schema\":{\"$ref\":\"#/components/schemas/NewTask\"}}}},"
    "\"responses\":{\"201\":{\"description\":\"Created\",\"headers\":{\"Location\":{\"schema\":"
    "{\"type\":\"string\"}}},\"content\":{\"application/json\":"
    "{\"schema\":{\"$ref\":\"#/components/schemas/TaskId\"}}}},"
    "\"200\":{\"description\":\"Already created with this Idempotency-Key\",\"content\":"
    "{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/TaskId\"}}}},"
    "\"413\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"422\":{\"$ref\":\"#/components/responses/ValidationError\"},"
    "\"503\":{\"$ref\":\"#/components/responses/Error\"}}}},"
    "\"/tasks/{task_id}\":{"
    "\"parameters\":[{\"name\":\"task_id\",\"in\":\"path\",\"required\":true,"
    "\"schema\":{\"type\":\"string\",\"format\":\"uuid\"}}],"
    "\"get\":{\"operationId\":\"getTask\",\"summary\":\"Read a task with its data and result\","
    "\"responses\":{\"200\":{\"description\":\"The task\",\"content\":{\"application/json\":"
    "{\"schema\":{\"$ref\":\"#/components/schemas/TaskDetail\"}}}},"
    "\"404\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"503\":{\"$ref\":\"#/components/responses/Error\"}}},"
    "\"patch\":{\"operationId\":\"updateTask\",\"summary\":\"Change a task's status\","
    "\"requestBody\":{\"required\":true,\"content\":{\"application/json\":"
    "{\"schema\":{\"$ref\":\"#/components/schemas/StatusUpdate\"}}}},"
    "\"responses\":{\"204\":{\"description\":\"Changed (or the same change was already made)\"},"
    "\"404\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"409\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"413\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"422\":{\"$ref\":\"#/components/responses/ValidationError\"},"
    "\"503\":{\"$ref\":\"#/components/responses/Error\"}}}},"
    "\"/health\":{\"get\":{\"operationId\":\"health\",\"summary\":\"Liveness of the API and "
    "store\","
    "\"responses\":{\"200\":{\"description\":\"Healthy\",\"content\":{\"application/json\":"
    "{\"schema\":{\"type\":\"object\",\"properties\":{\"status\":{\"type\":\"string\"}}}}}},"
    "\"503\":{\"$ref\":\"#/components/responses/Error\"}}}},"
    "\"/openapi.json\":{\"get\":{\"operationId\":\"openapi\",\"summary\":\"This document\","
    "\"responses\":{\"200\":{\"description\":\"OpenAPI 3 document\"}}}},"
    "\"/queues\":{\"get\":{\"operationId\":\"listQueues\",\"summary\":\"Queues with depth, "
    "in-flight, delayed and dead-letter counts\",\"responses\":{\"200\":{\"description\":"
    "\"The queues\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":"
    "\"#/components/schemas/QueueList\"}}}},\"503\":{\"$ref\":\"#/components/responses/Error\"}}}},"
    "\"/queues/{name}/redrive\":{\"parameters\":[{\"name\":\"name\",\"in\":\"path\","
    "\"required\":true,\"schema\":{\"type\":\"string\"}}],"
    "\"post\":{\"operationId\":\"redriveQueue\",\"summary\":\"Move the queue's dead-letter "
    "messages back; their tasks become CREATED again\",\"responses\":{\"200\":{\"description\":"
    "\"Moved\",\"content\":{\"application/json\":{\"schema\":{\"type\":\"object\","
    "\"properties\":{\"queue\":{\"type\":\"string\"},\"moved\":{\"type\":\"integer\"}}}}}},"
    "\"404\":{\"$ref\":\"#/components/responses/Error\"},"
    "\"503\":{\"$ref\":\"#/components/responses/Error\"}}}},"
    "\"/metrics\":{\"get\":{\"operationId\":\"metrics\",\"summary\":\"Prometheus metrics\","
    "\"responses\":{\"200\":{\"description\":\"Prometheus text format\",\"content\":"
    "{\"text/plain\":{\"schema\":{\"type\":\"string\"}}}}}}}},"
    "\"components\":{"
    "\"schemas\":{"
    "\"Status\":{\"type\":\"string\",\"enum\":[\"CREATED\",\"IN_PROGRESS\",\"COMPLETED\","
    "\"FAILED\"]},"
    "\"TaskType\":{\"type\":\"string\",\"enum\":[]},"
    "\"TaskId\":{\"type\":\"object\",\"required\":[\"id\"],\"properties\":{\"id\":{\"type\":"
    "\"string\",\"format\":\"uuid\"}}},"
    "\"NewTask\":{\"type\":\"object\",\"required\":[\"task_type\"],\"properties\":{"
    "\"task_type\":{\"$ref\":\"#/components/schemas/TaskType\"},"
    "\"data\":{\"type\":\"object\",\"default\":{}},"
    "\"ttl\":{\"description\":\"Unix seconds after which the finished task may be deleted\","
    "\"nullable\":true,\"oneOf\":[{\"type\":\"integer\",\"minimum\":0},{\"type\":\"string\","
    "\"pattern\":\"^[0-9]+$\"}]}}},"
    "\"Task\":{\"type\":\"object\",\"required\":[\"id\",\"task_type\",\"status\",\"status_msg\","
    "\"created_time\",\"updated_time\",\"ttl\"],\"properties\":{"
    "\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
    "\"task_type\":{\"$ref\":\"#/components/schemas/TaskType\"},"
    "\"status\":{\"$ref\":\"#/components/schemas/Status\"},"
    "\"status_msg\":{\"type\":\"string\"},"
    "\"created_time\":{\"type\":\"integer\"},"
    "\"updated_time\":{\"type\":\"integer\",\"nullable\":true},"
    "\"ttl\":{\"type\":\"integer\",\"nullable\":true}}},"
    "\"TaskDetail\":{\"allOf\":[{\"$ref\":\"#/components/schemas/Task\"},{\"type\":\"object\","
    "\"properties\":{\"data\":{\"type\":\"object\"},\"result\":{\"nullable\":true}}}]},"
    "\"TaskList\":{\"type\":\"object\",\"required\":[\"tasks\",\"next_token\"],\"properties\":{"
    "\"tasks\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Task\"}},"
    "\"next_token\":{\"type\":\"string\",\"nullable\":true}}},"
    "\"StatusUpdate\":{\"type\":\"object\",\"required\":[\"status\"],\"properties\":{"
    "\"status\":{\"$ref\":\"#/components/schemas/Status\"},"
    "\"status_msg\":{\"type\":\"string\",\"default\":\"\"},"
    "\"result\":{\"description\":\"Any JSON value\",\"nullable\":true}}},"
    "\"ValidationError\":{\"type\":\"object\",\"properties\":{\"detail\":{\"type\":\"array\","
    "\"items\":{\"type\":\"object\",\"properties\":{\"loc\":{\"type\":\"array\",\"items\":"
    "{\"type\":\"string\"}},\"msg\":{\"type\":\"string\"},\"type\":{\"type\":\"string\"}}}}}},"
    "\"Error\":{\"type\":\"object\",\"properties\":{\"detail\":{\"type\":\"string\"}}},"
    "\"QueueList\":{\"type\":\"object\",\"properties\":{\"queues\":{\"type\":\"array\","
    "\"items\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
    "\"depth\":{\"type\":\"integer\"},\"in_flight\":{\"type\":\"integer\"},"
    "\"delayed\":{\"type\":\"integer\"},\"dead_letter_queue\":{\"type\":\"string\","
    "\"nullable\":true},\"dead_letter_count\":{\"type\":\"integer\"},"
    "\"visibility_timeout\":{\"type\":\"integer\"},\"max_receive_count\":"
    "{\"type\":\"integer\"}}}}}}},"
    "\"responses\":{"
    "\"Error\":{\"description\":\"Error\",\"content\":{\"application/json\":{\"schema\":"
    "{\"$ref\":\"#/components/schemas/Error\"}}}},"
    "\"ValidationError\":{\"description\":\"Invalid request\",\"content\":{\"application/json\":"
    "{\"schema\":{\"$ref\":\"#/components/schemas/ValidationError\"}}}}}}}";

char *openapi_document(const config *c, bool pipeline, size_t *len)
{
    json_t *doc = json_loads(document, 0, NULL);
    if (!doc)
        return NULL;
    if (!pipeline) {
        json_t *paths = json_object_get(doc, "paths");
        json_object_del(paths, "/queues");
        json_object_del(paths, "/queues/{name}/redrive");
        json_object_del(paths, "/metrics");
        json_object_del(paths, "/tasks/{task_id}/trace");
        json_object_del(paths, "/");
    }
    json_t *types = json_object_get(
        json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"), "TaskType"),
        "enum");
    for (size_t i = 0; i < c->n_task_types; i++)
        json_array_append_new(types, json_string(c->task_types[i]));
    sbuf b = {0};
    json_write_compact(&b, doc);
    json_decref(doc);
    if (sbuf_failed(&b)) {
        sbuf_free(&b);
        return NULL;
    }
    return sbuf_take(&b, len);
}
