/*
 * store — helpers shared by every store adapter.
 */
#include "store.h"

#include <stdlib.h>

const char *store_rc_name(store_rc rc)
{
    switch (rc) {
    case STORE_OK:
        return "ok";
    case STORE_NOT_FOUND:
        return "not found";
    case STORE_CONFLICT:
        return "conflict";
    case STORE_REPEAT:
        return "repeat";
    case STORE_DUPLICATE:
        return "duplicate";
    case STORE_BUSY:
        return "busy";
    case STORE_ERROR:
        return "error";
    }
    return "unknown";
}

void store_page_free(store_page *p)
{
    for (size_t i = 0; i < p->count; i++)
        task_clear(&p->tasks[i]);
    free(p->tasks);
    p->tasks = NULL;
    p->count = 0;
}
