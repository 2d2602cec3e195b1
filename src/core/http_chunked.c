/*
 * http_chunked — the chunked body decoder; see http_chunked.h.
 *
 *   chunk-size [ blanks ] [ ";" extension ] CRLF, then that many bytes and CRLF, until a size
 *   of 0; then trailer lines (name ":" value), each ending in CRLF, up to an empty one.
 *
 * Every line ends in CR LF: a bare LF, a control byte in an extension or a trailer, or a
 * trailer line without a field name and its colon is refused, as RFC 9112 §7.1 frames a chunk
 * (a front end that framed such a body otherwise would take part of it for a request). The size
 * is hex, under 2^60 (15 digits after any leading zeros: a body is bounded far below that by the
 * server). The framing is bounded too, as Go's net/http bounds it: each chunk may take 16 bytes
 * of it and twice its data, and what goes past that, summed over the body, may not pass
 * HTTP_CHUNKED_EXCESS_MAX; so the bytes read stay within about 19 times the body's.
 */
#include "http_chunked.h"

#include "http_head.h"
#include "urlcode.h"

#include <stdbool.h>
#include <string.h>

enum {
    SIZE_START, /* the first hex digit of a size */
    SIZE,       /* more hex digits */
    SIZE_BLANK, /* blanks after the size, before a ';' or the line's end */
    EXTENSION,  /* after ';' up to the line's end */
    SIZE_LF,    /* after the size line's CR */
    DATA,       /* left bytes of chunk data */
    DATA_CR,    /* the CR after the data */
    DATA_LF,    /* the LF after that CR */
    TRAILER,    /* the start of a trailer line, or the empty line that ends them */
    TRAILER_NAME,
    TRAILER_TEXT, /* after the trailer's colon */
    TRAILER_LF,   /* after a trailer line's CR */
    END_LF,       /* after the last empty line's CR */
    FINISHED,
    FAILED,
};

/* Every size is below 2^SIZE_BITS. */
#define SIZE_BITS 60

void http_chunked_init(http_chunked *c)
{
    *c = (http_chunked){.state = SIZE_START};
}

/* The size line has ended (its LF just read): data follows, or the trailers after the last
 * chunk; FAILED once the framing passes its allowance by more than HTTP_CHUNKED_EXCESS_MAX. */
static int size_line_ended(http_chunked *c)
{
    uint64_t allowed = 16 + 2 * c->left; /* the size is under 2^60 */
    c->excess += c->line + 1 + 2;        /* the line, its LF, and the CR LF after the data */
    c->excess = c->excess > allowed ? c->excess - allowed : 0;
    c->line = 0;
    if (c->excess > HTTP_CHUNKED_EXCESS_MAX)
        return FAILED;
    return c->left ? DATA : TRAILER;
}

http_chunked_rc http_chunked_feed(http_chunked *c, const char *in, size_t n, size_t *used,
                                  sbuf *body)
{
    size_t i = 0;
    while (i < n && c->state != FINISHED && c->state != FAILED) {
        char ch = in[i];
        if (c->state == DATA) {
            size_t take = n - i < c->left ? n - i : (size_t)c->left;
            sbuf_append(body, in + i, take);
            c->left -= take;
            i += take;
            if (!c->left)
                c->state = DATA_CR;
            continue;
        }
        i++;
        bool in_line = c->state == SIZE_START || c->state == SIZE || c->state == SIZE_BLANK ||
                       c->state == EXTENSION;
        if (in_line && ++c->line > HTTP_CHUNKED_LINE_MAX) {
            c->state = FAILED;
            break;
        }
        bool in_trailers = c->state >= TRAILER && c->state <= END_LF;
        if (in_trailers && ++c->line > HTTP_CHUNKED_TRAILER_MAX) {
            c->state = FAILED;
            break;
        }
        switch (c->state) {
        case SIZE_START:
        case SIZE: {
            int v = hex_value(ch);
            if (v >= 0) {
                if (c->left >> (SIZE_BITS - 4)) { /* another digit would reach 2^SIZE_BITS */
                    c->state = FAILED;
                    break;
                }
                c->left = c->left * 16 + (uint64_t)v;
                c->state = SIZE;
            } else if (c->state == SIZE && ch == ';') {
                c->state = EXTENSION;
            } else if (c->state == SIZE && (ch == ' ' || ch == '\t')) {
                c->state = SIZE_BLANK;
            } else if (c->state == SIZE && ch == '\r') {
                c->state = SIZE_LF;
            } else {
                c->state = FAILED;
            }
            break;
        }
        case SIZE_BLANK:
            c->state = ch == ' ' || ch == '\t' ? SIZE_BLANK
                       : ch == ';'             ? EXTENSION
                       : ch == '\r'            ? SIZE_LF
                                               : FAILED;
            break;
        case EXTENSION:
            if (ch == '\r')
                c->state = SIZE_LF;
            else if (http_is_control((unsigned char)ch))
                c->state = FAILED;
            break;
        case SIZE_LF:
            c->state = ch == '\n' ? size_line_ended(c) : FAILED;
            break;
        case DATA_CR:
            c->state = ch == '\r' ? DATA_LF : FAILED;
            break;
        case DATA_LF:
            c->state = ch == '\n' ? SIZE_START : FAILED;
            c->line = 0;
            break;
        case TRAILER:
            c->state = ch == '\r'                         ? END_LF
                       : http_is_tchar((unsigned char)ch) ? TRAILER_NAME
                                                          : FAILED;
            break;
        case TRAILER_NAME:
            c->state = ch == ':'                          ? TRAILER_TEXT
                       : http_is_tchar((unsigned char)ch) ? TRAILER_NAME
                                                          : FAILED;
            break;
        case TRAILER_TEXT:
            if (ch == '\r')
                c->state = TRAILER_LF;
            else if (http_is_control((unsigned char)ch))
                c->state = FAILED;
            break;
        case TRAILER_LF:
            c->state = ch == '\n' ? TRAILER : FAILED;
            break;
        case END_LF:
            c->state = ch == '\n' ? FINISHED : FAILED;
            break;
        }
    }
    *used = i;
    if (c->state == FAILED)
        return HTTP_CHUNKED_BAD;
    return c->state == FINISHED ? HTTP_CHUNKED_DONE : HTTP_CHUNKED_MORE;
}
