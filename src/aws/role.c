/*
 * role — helpers shared by the Lambda roles; see role.h.
 */
#include "role.h"

#include "util/errbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void role_fail(role_result *out, const char *type, const char *fmt, ...)
{
    free(out->response);
    out->response = NULL;
    out->response_len = 0;
    snprintf(out->error_type, sizeof out->error_type, "%s", type);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->error_message, sizeof out->error_message, fmt, ap);
    va_end(ap);
    /* one line, whatever a parser's message brought in: it is logged and sent to Lambda */
    errbuf_one_line(out->error_message, sizeof out->error_message);
}

void role_result_clear(role_result *out)
{
    free(out->response);
    memset(out, 0, sizeof *out);
}
