/*
 * fuzz_xml — the element lookup and entity decoding that read AWS's Query
 * answers (aws/xml.h): SNS PublishBatch replies, SNS and SQS error bodies.
 *
 * Input: byte 0 picks the tag: below 0x80 one of the tags taskd looks for
 * (Code, Message, member, ...), else a tag of (byte & 15) + 1 bytes that
 * follow (XML name characters, or the input is passed over); byte 1 is the
 * decode's cap (0: the content's length + 1); the rest is the document.
 *
 * Invariants:
 *  - nothing is read past the document (ASan: an exact copy is searched);
 *  - xml_find gives what xml.h says, checked against a plain model: the
 *    first start tag "<tag" followed by '>', '/' or white space, its '>',
 *    empty when "/>" ends it, else the content up to the first "</tag>",
 *    a closed CDATA section passed over whole in both searches (one not
 *    closed is no section: its text is searched as the rest is);
 *    NULL when there is none or that first one is not closed; so content and
 *    *after lie inside the document, and *after is just past the end tag;
 *  - taking elements one after another from *after (as the reply's members
 *    are read) always moves forward; inside each element found, every known
 *    tag is looked for the same way, in a copy of just its content;
 *  - xml_decode writes at most cap - 1 bytes and a NUL, never more than
 *    the source's length, and the same bytes as a model decoder (a closed
 *    CDATA section's text as written) that stops at the first byte,
 *    character or reference that does not fit; with cap = length + 1 it
 *    decodes everything.
 *
 * Run: scripts/fuzz.sh xml   (corpus: tests/fuzz/corpus/xml/)
 */
#include "fuzz_util.h"

#include "aws/xml.h"

static const char *const known_tags[] = {"PublishBatchResult",
                                         "Successful",
                                         "Failed",
                                         "member",
                                         "Id",
                                         "MessageId",
                                         "Code",
                                         "Message",
                                         "Error",
                                         "SenderFault",
                                         "Type",
                                         "RequestId",
                                         "PublishResult",
                                         "ErrorResponse"};

static bool name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == ':';
}

/* ---- models ---- */

static bool delimiter(char c)
{
    return c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t model_cdata(const char *s, size_t left, size_t *text_len);

/* xml_find as xml.h describes it. */
static const char *model_find(const char *s, const char *end, const char *tag, size_t *n,
                              const char **after)
{
    size_t tl = strlen(tag), len = (size_t)(end - s), skip, text;
    for (size_t p = 0; p + 1 + tl < len; p++) {
        if ((skip = model_cdata(s + p, len - p, &text)) > 0) {
            p += skip - 1;
            continue;
        }
        if (s[p] != '<' || memcmp(s + p + 1, tag, tl) != 0 || !delimiter(s[p + 1 + tl]))
            continue;
        size_t gt = p + 1 + tl;
        while (gt < len && s[gt] != '>')
            gt++;
        if (gt == len)
            return NULL;
        if (s[gt - 1] == '/') {
            *n = 0;
            *after = s + gt + 1;
            return s + gt + 1;
        }
        for (size_t c = gt + 1; c + tl + 3 <= len; c++) {
            if ((skip = model_cdata(s + c, len - c, &text)) > 0) {
                c += skip - 1;
                continue;
            }
            if (s[c] == '<' && s[c + 1] == '/' && memcmp(s + c + 2, tag, tl) == 0 &&
                s[c + 2 + tl] == '>') {
                *n = c - gt - 1;
                *after = s + c + tl + 3;
                return s + gt + 1;
            }
        }
        return NULL;
    }
    return NULL;
}

/* The character reference or entity at s[0] == '&' into o: the bytes it takes, 0 if none. */
static size_t model_ref(const char *s, size_t left, char *o, size_t *olen)
{
    static const char *const names[] = {"lt", "gt", "amp", "quot", "apos"};
    static const char chars[] = {'<', '>', '&', '"', '\''};
    for (size_t i = 0; i < 5; i++) {
        size_t l = strlen(names[i]);
        if (left >= l + 2 && memcmp(s + 1, names[i], l) == 0 && s[l + 1] == ';') {
            o[0] = chars[i];
            *olen = 1;
            return l + 2;
        }
    }
    if (left < 3 || s[1] != '#')
        return 0;
    int base = s[2] == 'x' || s[2] == 'X' ? 16 : 10;
    size_t i = base == 16 ? 3 : 2, digits = 0;
    uint32_t cp = 0;
    for (; i < left && digits < 8; i++, digits++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'                 ? c - '0'
                : base == 16 && c >= 'a' && c <= 'f' ? c - 'a' + 10
                : base == 16 && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                     : -1;
        if (d < 0)
            break;
        cp = cp * (uint32_t)base + (uint32_t)d;
    }
    if (!digits || i >= left || s[i] != ';' || cp == 0 || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    if (cp < 0x80) {
        o[0] = (char)cp;
        *olen = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        *olen = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        *olen = 3;
    } else {
        o[0] = (char)(0xf0 | cp >> 18);
        o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[3] = (char)(0x80 | (cp & 0x3f));
        *olen = 4;
    }
    return i + 1;
}

/* The CDATA section at s[0] == '<', closed within left bytes: the bytes it takes, 0 if none;
 * its text is s[9..9 + *text_len). */
static size_t model_cdata(const char *s, size_t left, size_t *text_len)
{
    if (left < 9 || memcmp(s, "<![CDATA[", 9) != 0)
        return 0;
    for (size_t c = 9; c + 3 <= left; c++)
        if (s[c] == ']' && s[c + 1] == ']' && s[c + 2] == '>') {
            *text_len = c - 9;
            return c + 3;
        }
    return 0;
}

/* xml_decode as xml.h describes it, into out (room for n + 1); the length. */
static size_t model_decode(char *out, size_t cap, const char *s, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n;) {
        size_t text_len = 0, section = s[i] == '<' ? model_cdata(s + i, n - i, &text_len) : 0;
        if (section) { /* its text byte by byte, as far as it fits */
            size_t k = 0;
            for (; k < text_len && len + 1 <= cap - 1; k++)
                out[len++] = s[i + 9 + k];
            if (k < text_len)
                break;
            i += section;
            continue;
        }
        char ch[4];
        size_t olen = 0, used = s[i] == '&' ? model_ref(s + i, n - i, ch, &olen) : 0;
        if (!used) {
            ch[0] = s[i];
            used = olen = 1;
        }
        if (len + olen > cap - 1)
            break;
        memcpy(out + len, ch, olen);
        len += olen;
        i += used;
    }
    out[len] = '\0';
    return len;
}

/* ---- checks ---- */

/* Decode s[0..n) with cap (0: n + 1) and compare with the model. */
static void check_decode(const char *s, size_t n, size_t cap)
{
    if (cap == 0)
        cap = n + 1;
    char *out = malloc(cap), *want = malloc(n + 1);
    if (!out || !want)
        abort();
    size_t len = xml_decode(out, cap, s, n);
    FUZZ_CHECK(len < cap && len <= n, "decoded %zu bytes of %zu, cap %zu", len, n, cap);
    FUZZ_CHECK(out[len] == '\0', "decoded text not terminated");
    size_t wlen = model_decode(want, cap, s, n);
    FUZZ_CHECK(len == wlen && memcmp(out, want, len) == 0, "decoded %zu bytes, model %zu", len,
               wlen);
    if (cap > n) {
        size_t whole = model_decode(want, n + 1, s, n);
        FUZZ_CHECK(len == whole, "cap %zu > %zu, yet %zu of %zu decoded bytes", cap, n, len, whole);
    }
    free(want);
    free(out);
}

static void check_find(const char *doc, size_t size, const char *tag, size_t cap, bool nested);

/* Look for every known tag inside an element's content, itself an exact copy (as the reply's
 * lists and members are searched within their element only). */
static void check_inside(const char *v, size_t n, size_t cap)
{
    char *copy = malloc(n ? n : 1);
    if (!copy)
        abort();
    memcpy(copy, v, n);
    for (size_t i = 0; i < sizeof known_tags / sizeof *known_tags; i++)
        check_find(copy, n, known_tags[i], cap, true);
    free(copy);
}

static void check_find(const char *doc, size_t size, const char *tag, size_t cap, bool nested)
{
    const char *end = doc + size, *from = doc;
    size_t tl = strlen(tag);
    for (int k = 0; k < 64; k++) {
        size_t n = 0xdead, wn = 0xbeef;
        const char *after = NULL, *wafter = NULL;
        const char *v = xml_find(from, end, tag, &n, &after);
        const char *w = model_find(from, end, tag, &wn, &wafter);
        FUZZ_CHECK(v == w, "<%s> from %td: found at %td, model %td", tag, from - doc,
                   v ? v - doc : -1, w ? w - doc : -1);
        if (!v)
            return;
        FUZZ_CHECK(n == wn && after == wafter, "<%s> at %td: %zu bytes to %td, model %zu to %td",
                   tag, v - doc, n, after - doc, wn, wafter - doc);
        FUZZ_CHECK(v > from && v + n <= end && after >= v + n && after <= end,
                   "<%s>: content [%td, +%zu) after %td outside [%td, %zu]", tag, v - doc, n,
                   after - doc, from - doc, size);
        if (n > 0 || after != v)
            FUZZ_CHECK(after == v + n + tl + 3 && memcmp(v + n, "</", 2) == 0 &&
                           memcmp(v + n + 2, tag, tl) == 0 && v[n + 2 + tl] == '>',
                       "<%s>: no end tag at %td", tag, v + n - doc);
        check_decode(v, n, cap);
        if (!nested)
            check_inside(v, n, cap);
        FUZZ_CHECK(after > from, "no progress");
        from = after;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    char tag[32];
    size_t pos = 2;
    if (data[0] < 0x80) {
        snprintf(tag, sizeof tag, "%s",
                 known_tags[data[0] % (sizeof known_tags / sizeof *known_tags)]);
    } else {
        size_t tl = (size_t)(data[0] & 15) + 1;
        if (size < pos + tl)
            return 0;
        for (size_t i = 0; i < tl; i++)
            if (!name_char(data[pos + i]))
                return 0;
        memcpy(tag, data + pos, tl);
        tag[tl] = '\0';
        pos += tl;
    }
    size_t cap = data[1];
    size_t n = size - pos;
    /* an exact copy, so that a read past the document is a read past the allocation */
    char *doc = malloc(n ? n : 1);
    if (!doc)
        abort();
    memcpy(doc, data + pos, n);
    check_find(doc, n, tag, cap, false);
    check_decode(doc, n, cap);
    free(doc);
    return 0;
}
