/*
 * aws_error — the type and message of an AWS error answer; see aws_error.h.
 */
#include "aws_error.h"

#include "core/sbuf.h"
#include "xml.h"

#include <stdlib.h>
#include <string.h>

void aws_error_type(char *type, size_t typelen, const char *s, size_t n, char stop)
{
    const char *cut = memchr(s, stop, n);
    if (cut)
        n = (size_t)(cut - s);
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == '#') {
            s += i;
            n -= i;
            break;
        }
    str_trim(&s, &n);
    if (n >= typelen)
        n = typelen - 1;
    memcpy(type, s, n);
    type[n] = '\0';
}

/* A malloc'd copy of XML text s[0..n) with the entities decoded; NULL on no memory. */
static char *decoded_copy(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (out)
        xml_decode(out, n + 1, s, n);
    return out;
}

void aws_error_read_xml(const char *body, size_t len, char *type, size_t typelen, char **message)
{
    const char *s = body, *end = body + len;
    size_t n;
    const char *error = xml_find(s, end, "Error", &n, NULL);
    if (error) {
        s = error;
        end = error + n;
    }
    const char *code = xml_find(s, end, "Code", &n, NULL);
    if (code) {
        char *t = decoded_copy(code, n);
        if (t) {
            aws_error_type(type, typelen, t, strlen(t), '\0');
            free(t);
        }
    }
    const char *msg = xml_find(s, end, "Message", &n, NULL);
    if (msg)
        *message = decoded_copy(msg, n);
}
