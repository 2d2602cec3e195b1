/*
 * dashboard — the web page served at "/" and its files under "/dashboard/":
 * tasks live over /events, a task's data, history and trace, queues with
 * redrive, a form to create tasks. The files live in src/api/dashboard and
 * are compiled in (cmake/embed_assets.cmake), so the page works offline and
 * needs no build step of its own.
 *
 * Every answer carries a strict Content-Security-Policy (no inline script or
 * style, nothing from another origin), nosniff, no referrer, and a strong
 * ETag with Cache-Control: no-cache, so a browser revalidates and gets 304.
 */
#ifndef TASKD_DASHBOARD_H
#define TASKD_DASHBOARD_H

#include "api/response.h"

#include <stddef.h>

/* One compiled-in file (the generated dashboard_assets.c holds them). */
typedef struct dashboard_asset {
    const char *name;         /* "app.js" */
    const char *content_type; /* with charset */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted: "\"1f2e...\"", from the content's SHA-256 */
} dashboard_asset;

extern const dashboard_asset dashboard_assets[];
extern const size_t dashboard_n_assets;

/* The file of that name; NULL when there is none. */
const dashboard_asset *dashboard_find(const char *name);

/*
 * Answer a GET or HEAD of the file name ("index.html" for "/"): 200 with it,
 * 304 when if_none_match (the request's If-None-Match, may be NULL) names its
 * ETag, 404 when there is no such file.
 */
void dashboard_serve(const char *name, const char *if_none_match, api_response *resp);

#endif
