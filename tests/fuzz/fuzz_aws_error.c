/*
 * fuzz_aws_error — what an AWS error answer says went wrong, as aws_http
 * keeps it (aws/aws_error.h): the XML error body of the Query protocol
 * (<Code> and <Message> inside <Error>) and the error type taken from it,
 * from a JSON body's __type or from a header.
 *
 * Input: byte 0 picks the type's room (bit 7 clear: 128 bytes, as
 * aws_response has; set: 1 to 32) and, in its low two bits, the stop byte
 * for the direct aws_error_type() call ('\0', ':', ';', '#'); the rest is
 * the body.
 *
 * Invariants:
 *  - nothing is read past the body, nothing written past the type's room
 *    (ASan: exact allocations); nothing leaks;
 *  - aws_error_read_xml() gives what aws_error.h says, checked against a
 *    model built on xml.h's lookups (fuzz_xml checks those against their
 *    own model): the <Code> and <Message> of the first <Error> (else of the
 *    body); the type the Code's decoded text up to a NUL, kept as
 *    aws_error_type() keeps it, or left as it was without a Code; the
 *    message a new copy of the Message's decoded text, or the pointer left
 *    as it was without a Message;
 *  - aws_error_type() over the raw body, with each stop, against a plain
 *    model of its rule: before the first stop, after the last '#', white
 *    space (space, tab, CR, LF) around it dropped, cut to the room; so the
 *    type is NUL-terminated in its room, a piece of the text given, and
 *    holds no '#' and no stop byte.
 *
 * Run: scripts/fuzz.sh aws_error   (corpus: tests/fuzz/corpus/aws_error/)
 */
#include "fuzz_util.h"

#include "aws/aws_error.h"
#include "aws/xml.h"

/* ---- models ---- */

/* aws_error_type() as aws_error.h says it: into want (room bytes). */
static void model_type(char *want, size_t room, const char *s, size_t n, char stop)
{
    size_t end = 0;
    while (end < n && s[end] != stop)
        end++;
    size_t start = end;
    while (start > 0 && s[start - 1] != '#')
        start--;
    while (start < end && s[start] && strchr(" \t\r\n", s[start]))
        start++;
    while (end > start && s[end - 1] && strchr(" \t\r\n", s[end - 1]))
        end--;
    size_t len = end - start < room - 1 ? end - start : room - 1;
    memcpy(want, s + start, len);
    want[len] = '\0';
}

/* The decoded text of [v, v + n), malloc'ed and NUL-terminated. */
static char *decoded(const char *v, size_t n)
{
    char *t = malloc(n + 1);
    if (!t)
        abort();
    size_t len = xml_decode(t, n + 1, v, n);
    FUZZ_CHECK(len <= n && t[len] == '\0', "decoded %zu bytes of %zu", len, n);
    return t;
}

/* ---- checks ---- */

static const char *const stops = "\0:;#";

static void check_type(const char *type, size_t room, const char *s, size_t n, char stop,
                       const char *what)
{
    FUZZ_CHECK(memchr(type, '\0', room), "%s: type not terminated in its %zu bytes", what, room);
    size_t len = strlen(type);
    char *want = malloc(room);
    if (!want)
        abort();
    model_type(want, room, s, n, stop);
    FUZZ_CHECK(strcmp(type, want) == 0, "%s: type \"%s\", want \"%s\" (stop 0x%02x)", what, type,
               want, (unsigned char)stop);
    FUZZ_CHECK(len < room && !memchr(type, '#', len) && (!stop || !memchr(type, stop, len)),
               "%s: type \"%s\" holds a '#' or its stop", what, type);
    FUZZ_CHECK(len == 0 || memmem(s, n, type, len), "%s: type \"%s\" is not in the text", what,
               type);
    free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t room = data[0] & 0x80 ? 1 + (size_t)(data[0] & 31) : 128;
    char stop = stops[data[0] & 3];
    size_t len = size - 1;
    /* exact copies and allocations: a read or write past any of them is ASan's */
    char *body = malloc(len ? len : 1);
    char *type = malloc(room), *before = malloc(room);
    if (!body || !type || !before)
        abort();
    memcpy(body, data + 1, len);

    /* the XML error body, over a type and a message already there */
    memset(type, 'p', room - 1);
    type[room - 1] = '\0';
    memcpy(before, type, room);
    static char preset[] = "a message already there";
    char *message = preset;
    aws_error_read_xml(body, len, type, room, &message);

    const char *s = body, *end = body + len;
    size_t n;
    const char *error = xml_find(s, end, "Error", &n, NULL);
    if (error) {
        s = error;
        end = error + n;
    }
    const char *code = xml_find(s, end, "Code", &n, NULL);
    if (code) {
        char *t = decoded(code, n);
        check_type(type, room, t, strlen(t), '\0', "<Code>");
        free(t);
    } else {
        FUZZ_CHECK(memcmp(type, before, room) == 0, "no <Code>, yet the type is \"%s\"", type);
    }
    const char *msg = xml_find(s, end, "Message", &n, NULL);
    if (msg) {
        char *want = decoded(msg, n);
        FUZZ_CHECK(message && message != preset, "a <Message>, and no copy of it");
        FUZZ_CHECK(strcmp(message, want) == 0, "message \"%s\", want \"%s\"", message, want);
        free(want);
        free(message);
    } else {
        FUZZ_CHECK(message == preset, "no <Message>, yet the message changed");
    }

    /* the raw body as a JSON __type or a header's value would be taken */
    aws_error_type(type, room, body, len, stop);
    check_type(type, room, body, len, stop, "raw");

    free(before);
    free(type);
    free(body);
    return 0;
}
