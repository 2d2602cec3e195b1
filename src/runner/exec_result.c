/*
 * exec_result — a program's output turned into a task result or a status message;
 * see exec_result.h for the contract.
 *
 * Design:
 * - A UTF-8 byte order mark that begins standard output (some runtimes write one) is left out
 *   before the output is parsed, as the configuration loader leaves out one of a file: JSON
 *   after it is JSON.
 * - Standard output that parses as JSON (checked with jansson) is returned as its own text
 *   with the whitespace between tokens removed, not re-serialised: jansson would print 0.1 as
 *   0.10000000000000001. Text that is not JSON becomes a JSON string.
 * - Invalid UTF-8 and NUL bytes are replaced with U+FFFD byte by byte, in the result text and
 *   in status messages, so both are always valid JSON/UTF-8 that a store keeps.
 * - The stderr tail may begin in the middle of a UTF-8 sequence or a line; the message skips
 *   to the next character, and quotes whole lines when the tail is longer than it may quote.
 */
#include "runner/exec_result.h"
#include "core/json_util.h"
#include "core/sbuf.h"
#include "runner/exec_handler.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* ---- text ---- */

/*
 * Append s[0..n) as UTF-8, each invalid byte and each NUL replaced with U+FFFD: a store keeps
 * text NUL-terminated, and a "\u0000" in a result would be refused as a client's is.
 */
static void append_utf8(sbuf *b, const char *s, size_t n)
{
    size_t i = 0, run = 0; /* s[run..i) is valid and not yet appended */
    while (i < n) {
        size_t len = s[i] ? utf8_char_len(s + i, n - i) : 0;
        if (len) {
            i += len;
            continue;
        }
        sbuf_append(b, s + run, i - run);
        sbuf_append(b, "\xEF\xBF\xBD", 3);
        run = ++i;
    }
    sbuf_append(b, s + run, n - run);
}

/* Append valid JSON text s[0..n) without the whitespace between its tokens. */
static void append_json_compact(sbuf *b, const char *s, size_t n)
{
    bool in_string = false, escaped = false;
    size_t run = 0; /* s[run..i) is to be kept and not yet appended */
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (str_is_ws(c)) {
            sbuf_append(b, s + run, i - run);
            run = i + 1;
        }
    }
    sbuf_append(b, s + run, n - run);
}

/* ---- the result ---- */

int exec_result_from_stdout(const char *s, size_t n, char **result)
{
    *result = NULL;
    if (n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) { /* a UTF-8 byte order mark first */
        s += 3;
        n -= 3;
    }
    if (n == 0)
        return 0;
    sbuf b = {0};
    json_error_t jerr;
    bool nomem;
    json_t *v = json_parse(s, n, JSON_DECODE_ANY, &jerr, &nomem);
    if (nomem)
        return ENOMEM; /* JSON or not is unknown: not text to quote */
    /* nested past the parser's depth, or a number past its range: JSON no store can keep,
     * kept as such, so the task fails for it (work.c) instead of completing with the text as a
     * string. The parser stopped before it checked the rest, so this text is kept only because
     * the work step's check refuses it before any store sees it. */
    enum json_error_code code = v ? json_error_unknown : json_error_code(&jerr);
    bool unstorable = code == json_error_stack_overflow || code == json_error_numeric_overflow;
    if (v || unstorable) {
        json_decref(v);
        append_json_compact(&b, s, n);
    } else {
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
            n--;
        if (n == 0)
            return 0;
        sbuf text = {0};
        append_utf8(&text, s, n);
        if (sbuf_failed(&text)) {
            sbuf_free(&text);
            return ENOMEM;
        }
        sbuf_json_strn(&b, text.data, text.len);
        sbuf_free(&text);
    }
    *result = sbuf_take(&b, NULL);
    return *result ? 0 : ENOMEM;
}

/* ---- the failure message ---- */

/* Append ": <the last line(s) of stderr, up to EXEC_STATUS_TAIL bytes>" when there are any. */
static void append_stderr_summary(sbuf *b, const char *s, size_t n, bool cut)
{
    size_t start = 0;
    if (cut) /* the tail may begin inside a UTF-8 sequence */
        start = utf8_start(s, start, n);
    while (n > start && str_is_ws(s[n - 1]))
        n--;
    if (n - start > EXEC_STATUS_TAIL) {
        size_t from = n - EXEC_STATUS_TAIL;
        const char *nl = memchr(s + from, '\n', n - from);
        if (nl) {
            from = (size_t)(nl - s) + 1; /* whole lines only */
        } else {
            from = utf8_start(s, from, n);
        }
        start = from;
    }
    while (start < n && str_is_ws(s[start]))
        start++;
    if (start == n)
        return;
    sbuf_puts(b, ": ");
    append_utf8(b, s + start, n - start);
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGHUP:
        return "SIGHUP";
    case SIGINT:
        return "SIGINT";
    case SIGQUIT:
        return "SIGQUIT";
    case SIGILL:
        return "SIGILL";
    case SIGTRAP:
        return "SIGTRAP";
    case SIGABRT:
        return "SIGABRT";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGKILL:
        return "SIGKILL";
    case SIGUSR1:
        return "SIGUSR1";
    case SIGSEGV:
        return "SIGSEGV";
    case SIGUSR2:
        return "SIGUSR2";
    case SIGPIPE:
        return "SIGPIPE";
    case SIGALRM:
        return "SIGALRM";
    case SIGTERM:
        return "SIGTERM";
    case SIGCHLD:
        return "SIGCHLD";
    case SIGCONT:
        return "SIGCONT";
    case SIGSTOP:
        return "SIGSTOP";
    case SIGTSTP:
        return "SIGTSTP";
    case SIGTTIN:
        return "SIGTTIN";
    case SIGTTOU:
        return "SIGTTOU";
    case SIGURG:
        return "SIGURG";
    case SIGXCPU:
        return "SIGXCPU";
    case SIGXFSZ:
        return "SIGXFSZ";
    case SIGVTALRM:
        return "SIGVTALRM";
    case SIGPROF:
        return "SIGPROF";
    case SIGSYS:
        return "SIGSYS";
#ifdef SIGWINCH
    case SIGWINCH:
        return "SIGWINCH";
#endif
    default:
        return "unknown signal";
    }
}

/* True when the CPU time limit is what killed a program ended by signal sig. */
static bool cpu_limit_hit(int sig, unsigned cpu_limit_s, int64_t cpu_ms)
{
    if (cpu_limit_s == 0)
        return false;
    if (sig == SIGXCPU) /* sent at the soft limit */
        return true;
    return sig == SIGKILL && cpu_ms >= (int64_t)cpu_limit_s * 1000; /* the hard limit, 1 s on */
}

char *exec_result_failure(int wait_status, unsigned cpu_limit_s, int64_t cpu_ms, const char *tail,
                          size_t n, bool cut)
{
    sbuf b = {0};
    if (WIFEXITED(wait_status)) {
        sbuf_printf(&b, "exit status %d", WEXITSTATUS(wait_status));
    } else if (WIFSIGNALED(wait_status)) {
        int sig = WTERMSIG(wait_status);
        sbuf_printf(&b, "killed by signal %d (%s", sig, signal_name(sig));
        if (cpu_limit_hit(sig, cpu_limit_s, cpu_ms))
            sbuf_printf(&b, ": CPU time limit of %u s", cpu_limit_s);
        sbuf_putc(&b, ')');
    } else {
        sbuf_printf(&b, "ended with wait status %#x", (unsigned)wait_status);
    }
    append_stderr_summary(&b, tail, n, cut);
    return sbuf_take(&b, NULL);
}
