/*
 * dashboard — serving the page's compiled-in files; see dashboard.h.
 */
#include "dashboard.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* No inline script or style, nothing from elsewhere: the page only talks to its own origin. */
static const char CSP[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

const dashboard_asset *dashboard_find(const char *name)
{
    for (size_t i = 0; i < dashboard_n_assets; i++)
        if (strcmp(dashboard_assets[i].name, name) == 0)
            return &dashboard_assets[i];
    return NULL;
}

/*
 * Does an If-None-Match value name etag? A comma-separated list of entity
 * tags, or "*"; the comparison is the weak one (RFC 9110 13.1.2), so a "W/"
 * prefix is ignored.
 */
static bool etag_matches(const char *list, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (*p != '"')
            return false; /* not an entity tag: ignore the header */
        const char *end = strchr(p + 1, '"');
        if (!end)
            return false;
        if ((size_t)(end + 1 - p) == elen && memcmp(p, etag, elen) == 0)
            return true;
        p = end + 1;
    }
    return false;
}

void dashboard_serve(const char *name, const char *if_none_match, api_response *resp)
{
    const dashboard_asset *f = dashboard_find(name);
    if (!f) {
        api_error(resp, 404, "Not Found");
        return;
    }
    api_add_header(resp, "Content-Security-Policy", CSP);
    api_add_header(resp, "X-Content-Type-Options", "nosniff");
    api_add_header(resp, "Referrer-Policy", "no-referrer");
    /* revalidate every time: a new taskd serves a new page, and the answer is a cheap 304 */
    api_add_header(resp, "Cache-Control", "no-cache");
    api_add_header(resp, "ETag", f->etag);
    if (if_none_match && etag_matches(if_none_match, f->etag)) {
        resp->status = 304;
        return;
    }
    char *body = malloc(f->len ? f->len : 1);
    if (!body) {
        api_error(resp, 500, "Out of memory");
        return;
    }
    memcpy(body, f->data, f->len);
    resp->status = 200;
    resp->content_type = f->content_type;
    resp->body = body;
    resp->body_len = f->len;
}
