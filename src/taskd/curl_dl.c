/*
 * curl_dl — libcurl's functions that taskd calls, passed on to the library once it is loaded;
 * see curl_dl.h.
 *
 * State: a table of the library's functions, set once by curl_dl_init() before
 * any thread that uses them starts, and read only after that (libcurl's own rule for
 * curl_global_init()).
 */
#include "curl_dl.h"

#include "core/errbuf.h"

/* curl_easy_setopt() and curl_easy_getinfo() are defined here: not libcurl's macros of them */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>

#ifndef TASKD_CURL_SONAME
#define TASKD_CURL_SONAME "libcurl.so.4"
#endif

static struct {
    CURLcode (*global_init)(long flags);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *curl);
    CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
    const char *(*easy_strerror)(CURLcode code);
    void (*easy_cleanup)(CURL *curl);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
    void (*slist_free_all)(struct curl_slist *list);
} fn;

/* Each function of fn by its name in the library. */
static const struct {
    const char *name;
    void **slot;
} symbols[] = {
    {"curl_global_init", (void **)&fn.global_init},
    {"curl_global_cleanup", (void **)&fn.global_cleanup},
    {"curl_easy_init", (void **)&fn.easy_init},
    {"curl_easy_setopt", (void **)&fn.easy_setopt},
    {"curl_easy_perform", (void **)&fn.easy_perform},
    {"curl_easy_getinfo", (void **)&fn.easy_getinfo},
    {"curl_easy_strerror", (void **)&fn.easy_strerror},
    {"curl_easy_cleanup", (void **)&fn.easy_cleanup},
    {"curl_slist_append", (void **)&fn.slist_append},
    {"curl_slist_free_all", (void **)&fn.slist_free_all},
};

static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;
static bool ready; /* the library loaded, every function resolved, curl_global_init() done */

bool curl_dl_init_from(const char *soname, char *err, size_t errlen)
{
    pthread_mutex_lock(&load_mu);
    if (ready) {
        pthread_mutex_unlock(&load_mu);
        return true;
    }
    bool ok = false;
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        errbuf_set(err, errlen,
                   "cannot load %s, which OTLP export needs (an OTLP endpoint is set): %s", soname,
                   why ? why : "no reason given");
        goto out;
    }
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        if (!(*symbols[i].slot = dlsym(lib, symbols[i].name))) {
            errbuf_set(err, errlen, "%s, which OTLP export needs, has no %s", soname,
                       symbols[i].name);
            goto out;
        }
    }
    CURLcode rc = fn.global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        errbuf_set(err, errlen, "%s, which OTLP export needs, failed to initialise: %s", soname,
                   fn.easy_strerror(rc));
        goto out;
    }
    ready = ok = true; /* never unloaded */
out:
    if (!ok && lib)
        dlclose(lib);
    pthread_mutex_unlock(&load_mu);
    return ok;
}

bool curl_dl_init(char *err, size_t errlen)
{
    return curl_dl_init_from(TASKD_CURL_SONAME, err, errlen);
}

/* ---- libcurl's functions, passed on; each fails as libcurl does when it cannot start ---- */

CURLcode curl_global_init(long flags)
{
    return ready ? fn.global_init(flags) : CURLE_FAILED_INIT;
}

/* Undoes curl_dl_init() but for the library's mapping (never unloaded): the functions fail again
 * until it is called once more. */
void curl_global_cleanup(void)
{
    pthread_mutex_lock(&load_mu);
    if (ready)
        fn.global_cleanup();
    ready = false;
    pthread_mutex_unlock(&load_mu);
}

CURL *curl_easy_init(void)
{
    return ready ? fn.easy_init() : NULL;
}

/* An option's type is its number's range (curl.h's CURLOPTTYPE_*): what the one argument after
 * it is read as and passed on as. */
CURLcode curl_easy_setopt(CURL *curl, CURLoption option, ...)
{
    if (!ready)
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, option);
    CURLcode rc;
    if (option < CURLOPTTYPE_OBJECTPOINT)
        rc = fn.easy_setopt(curl, option, va_arg(ap, long));
    else if (option < CURLOPTTYPE_FUNCTIONPOINT)
        rc = fn.easy_setopt(curl, option, va_arg(ap, void *));
    else if (option < CURLOPTTYPE_OFF_T)
        rc = fn.easy_setopt(curl, option, va_arg(ap, void (*)(void)));
    else if (option < CURLOPTTYPE_BLOB)
        rc = fn.easy_setopt(curl, option, va_arg(ap, curl_off_t));
    else
        rc = fn.easy_setopt(curl, option, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

CURLcode curl_easy_perform(CURL *curl)
{
    return ready ? fn.easy_perform(curl) : CURLE_FAILED_INIT;
}

/* Every CURLINFO_* takes a pointer to where its value goes. */
CURLcode curl_easy_getinfo(CURL *curl, CURLINFO info, ...)
{
    if (!ready)
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    CURLcode rc = fn.easy_getinfo(curl, info, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

const char *curl_easy_strerror(CURLcode code)
{
    return ready ? fn.easy_strerror(code) : "libcurl is not loaded";
}

void curl_easy_cleanup(CURL *curl)
{
    if (ready)
        fn.easy_cleanup(curl);
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
    return ready ? fn.slist_append(list, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *list)
{
    if (ready)
        fn.slist_free_all(list);
}
