/*
 * xml — element lookup and entity decoding for AWS's Query answers; see
 * xml.h.
 *
 * xml_find scans for "<tag" followed by '>', '/' or white space (so a
 * longer name with the same prefix is skipped), takes the '>' that ends the
 * start tag, and, unless it closes an empty element, the first "</tag>"
 * after it; a CDATA section that is closed is passed over in both searches,
 * so that neither a start nor an end tag in its text counts. A reference is decoded only when it is
 * complete (";" included) and names a character XML allows (U+0000 and surrogates never); its UTF-8
 * is at most 4 bytes, never more than the reference's own text. A CDATA
 * section is its text, without the 12 bytes of its markers.
 */
#include "xml.h"

#include <stdbool.h>
#include <string.h>

/* Longest run of digits read in a character reference (enough for U+0010FFFF zero-padded). */
#define REF_DIGITS_MAX 8

static const char *cdata(const char *s, const char *end, size_t *n, const char **after,
                         bool *unclosed);

/* Just past the CDATA section that starts at p and is closed before end, else p; once one is not
 * closed (*unclosed), none after it is either, and none is looked for. */
static const char *past_cdata(const char *p, const char *end, bool *unclosed)
{
    size_t n;
    const char *after;
    return *p == '<' && !*unclosed && cdata(p, end, &n, &after, unclosed) ? after : p;
}

const char *xml_find(const char *s, const char *end, const char *tag, size_t *n, const char **after)
{
    size_t tl = strlen(tag);
    bool unclosed = false;
    for (const char *p = s; p + tl + 2 <= end; p++) {
        const char *past = past_cdata(p, end, &unclosed);
        if (past != p) {
            p = past - 1;
            continue;
        }
        if (p[0] != '<' || memcmp(p + 1, tag, tl) != 0)
            continue;
        const char *q = p + 1 + tl;
        if (*q != '>' && *q != '/' && *q != ' ' && *q != '\t' && *q != '\r' && *q != '\n')
            continue; /* a longer name with this prefix */
        const char *gt = memchr(q, '>', (size_t)(end - q));
        if (!gt)
            return NULL;
        if (gt[-1] == '/') {
            *n = 0;
            if (after)
                *after = gt + 1;
            return gt + 1;
        }
        const char *v = gt + 1;
        for (const char *c = v; c + tl + 3 <= end; c++) {
            const char *past_text = past_cdata(c, end, &unclosed);
            if (past_text != c) {
                c = past_text - 1;
                continue;
            }
            if (c[0] == '<' && c[1] == '/' && memcmp(c + 2, tag, tl) == 0 && c[2 + tl] == '>') {
                *n = (size_t)(c - v);
                if (after)
                    *after = c + tl + 3;
                return v;
            }
        }
        return NULL;
    }
    return NULL;
}

/* Write the UTF-8 encoding of code point cp (at most U+10FFFF) at o; its length. */
static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * Decode one entity or character reference at s (which starts with '&')
 * into o (room for 4 bytes): the bytes of s it used, 0 when it is not one
 * (then '&' stands for itself), and *olen the bytes written.
 */
static size_t entity(const char *s, const char *end, char *o, size_t *olen)
{
    static const struct {
        const char *name;
        char ch;
    } named[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        size_t l = strlen(named[i].name);
        if ((size_t)(end - s) >= l && memcmp(s, named[i].name, l) == 0) {
            o[0] = named[i].ch;
            *olen = 1;
            return l;
        }
    }
    if (end - s < 4 || s[1] != '#')
        return 0;
    bool hex = s[2] == 'x' || s[2] == 'X';
    const char *p = s + (hex ? 3 : 2);
    unsigned long cp = 0;
    int digits = 0;
    for (; p < end && digits < REF_DIGITS_MAX; p++, digits++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (hex && *p >= 'a' && *p <= 'f')
            d = *p - 'a' + 10;
        else if (hex && *p >= 'A' && *p <= 'F')
            d = *p - 'A' + 10;
        else
            break;
        cp = cp * (hex ? 16 : 10) + (unsigned long)d;
    }
    if (digits == 0 || p >= end || *p != ';' || cp == 0 || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *olen = put_utf8(o, cp);
    return (size_t)(p + 1 - s);
}

/*
 * The text of a CDATA section at s ("<![CDATA[" ... "]]>"): its start, with *n its length and
 * *after just past its "]]>"; NULL when s starts none, or none that is closed before end (then
 * *unclosed is set: no "]]>" follows, so no later section is closed either).
 */
static const char *cdata(const char *s, const char *end, size_t *n, const char **after,
                         bool *unclosed)
{
    static const char open[] = "<![CDATA[";
    const size_t ol = sizeof open - 1;
    if ((size_t)(end - s) < ol || memcmp(s, open, ol) != 0)
        return NULL;
    for (const char *c = s + ol; c + 3 <= end; c++)
        if (memcmp(c, "]]>", 3) == 0) {
            *n = (size_t)(c - (s + ol));
            *after = c + 3;
            return s + ol;
        }
    *unclosed = true;
    return NULL;
}

size_t xml_decode(char *out, size_t cap, const char *s, size_t n)
{
    const char *end = s + n;
    size_t len = 0;
    bool unclosed = false; /* a section was not closed: none after it is, nor is looked for */
    while (s < end) {
        size_t tn;
        const char *after,
            *text = *s == '<' && !unclosed ? cdata(s, end, &tn, &after, &unclosed) : NULL;
        if (text) { /* as written: nothing in it is a reference */
            size_t room = cap - 1 - len;
            memcpy(out + len, text, tn < room ? tn : room);
            len += tn < room ? tn : room;
            if (tn > room)
                break;
            s = after;
            continue;
        }
        char ch[4];
        size_t used = 0, chlen = 0;
        if (*s == '&')
            used = entity(s, end, ch, &chlen);
        if (used == 0) {
            ch[0] = *s;
            used = chlen = 1;
        }
        if (chlen > cap - 1 - len)
            break;
        memcpy(out + len, ch, chlen);
        len += chlen;
        s += used;
    }
    out[len] = '\0';
    return len;
}
