/*
 * response — the API's answers and error bodies; see response.h.
 */
#include "response.h"

#include "core/sbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

static const char JSON_TYPE[] = "application/json";

void api_add_header(api_response *resp, const char *name, const char *value)
{
    if (resp->n_headers >= API_MAX_HEADERS)
        return;
    api_header *h = &resp->headers[resp->n_headers++];
    h->name = name;
    snprintf(h->value, sizeof h->value, "%s", value);
}

bool api_has_header(const api_response *resp, const char *name)
{
    for (int i = 0; i < resp->n_headers && i < API_MAX_HEADERS; i++)
        if (resp->headers[i].name && strcasecmp(resp->headers[i].name, name) == 0)
            return true;
    return false;
}

const api_header API_DEFAULT_HEADER[API_DEFAULT_HEADERS] = {
    {"X-Content-Type-Options", "nosniff"},
    {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
};

const char *api_bodiless_text(const api_response *resp)
{
    return resp->status >= 400 ? "{\"detail\":\"Out of memory\"}" : "";
}

void api_error(api_response *resp, int status, const char *detail)
{
    free(resp->body);
    sbuf b = {0};
    sbuf_puts(&b, "{\"detail\":");
    sbuf_json_str(&b, detail);
    sbuf_putc(&b, '}');
    resp->status = status;
    resp->content_type = JSON_TYPE;
    resp->body = sbuf_failed(&b) ? NULL : sbuf_take(&b, &resp->body_len);
    if (!resp->body) {
        resp->status = 500; /* the transport sends api_bodiless_text() */
        resp->body_len = 0;
    }
    sbuf_free(&b);
}

void api_sbuf_error(api_response *resp, const sbuf *b)
{
    if (!b || sbuf_error(b) == ENOMEM) {
        api_error(resp, 500, "Out of memory");
        return;
    }
    char detail[96];
    snprintf(detail, sizeof detail, "Cannot make the answer: %s", sbuf_error_text(b));
    api_error(resp, 500, detail);
}

const char *api_body_too_large_detail(char *buf, size_t size, size_t limit)
{
    snprintf(buf, size, "Request body too large (limit %zu bytes)", limit);
    return buf;
}

void api_body_too_large(api_response *resp, size_t limit)
{
    char detail[96];
    api_error(resp, 413, api_body_too_large_detail(detail, sizeof detail, limit));
}

void api_response_free(api_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    if (resp->stream) { /* not taken by a transport */
        resp->stream->ops->close(resp->stream);
        resp->stream = NULL;
    }
}
