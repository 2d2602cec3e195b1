/*
 * curl_dl — libcurl loaded when taskd needs it, not at every start.
 *
 * Linked with libcurl, taskd would load its thirty-odd libraries (TLS, Kerberos, LDAP, ...) before
 * main() at each start, though only the OTLP exporter uses it (docs/design.md "A start"). taskd
 * links this module instead: it defines the few libcurl functions taskd calls
 * (trace/export_otlp.c), each passing its call on to libcurl's own once curl_dl_init() has
 * loaded the library (dlopen() of the soname the build found) and initialised it. Before that,
 * or when it could not, they fail as libcurl does when it cannot start: NULL from
 * curl_easy_init() and curl_slist_append(), CURLE_FAILED_INIT from the others. The tracer calls
 * curl_dl_init() when an OTLP exporter is configured (tracer_options.curl_init), so a start with
 * no exporter loads nothing more.
 *
 * A program that links libcurl (bootstrap, the tests of the AWS clients) does not link this.
 */
#ifndef TASKD_CURL_DL_H
#define TASKD_CURL_DL_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Load libcurl and resolve the functions taskd calls, then curl_global_init() it; true at once
 * when that was done before. False with a reason in err, naming the library, when it cannot be
 * loaded, lacks one of the functions, or fails to initialise. Call it before starting a thread
 * that may use libcurl; curl_global_cleanup() undoes it (the library stays mapped).
 */
bool curl_dl_init(char *err, size_t errlen);
/* curl_dl_init() of the library named soname: what a test of a library that is not there uses. */
bool curl_dl_init_from(const char *soname, char *err, size_t errlen);

#endif
