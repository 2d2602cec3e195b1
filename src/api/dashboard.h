/*
 * dashboard — the HTML page served at "/": tasks, queues, and a task's
 * trace drawn as a timeline, all read from the JSON routes by the browser.
 */
#ifndef TASKD_DASHBOARD_H
#define TASKD_DASHBOARD_H

#include <stddef.h>

/* The page (static storage) and its length. */
const char *dashboard_page(size_t *len);

#endif
