/*
 * Unit tests for runner/child: input on stdin, the environment given and no other, the cap on
 * stdout, the sliding stderr tail, exit statuses, the deadline, a background process holding
 * stdout after the child exits, unread input, spawn failures, and child_free() on a child still
 * running.
 *
 * The programs are one-line shell scripts run with sh -c, so they need no files of their own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "runner/child.h"
#include "util/clock.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define SH "/bin/sh"

/* A spec running `sh -c script` with env (NULL: an empty environment) and generous limits. */
static child_spec script_spec(char **argv, const char *script, char **env)
{
    static char *no_env[] = {NULL};
    argv[0] = "sh";
    argv[1] = "-c";
    argv[2] = (char *)script;
    argv[3] = NULL;
    return (child_spec){.path = SH,
                        .argv = argv,
                        .env = env ? env : no_env,
                        .stdout_max = 1 << 16,
                        .stderr_tail = 256,
                        .drain_ms = 100};
}

/* Start c, wait until deadline_ms from now, kill the group and reap; returns how it ended. */
static child_end run(child *c, int64_t deadline_ms, int *status)
{
    assert_int_equal(child_start(c), 0);
    child_end end = child_wait(c, clock_mono_ms() + deadline_ms);
    child_kill_group(c);
    assert_int_equal(child_reap(c, status), 0);
    return end;
}

static void test_input_reaches_stdin(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "cat", NULL);
    spec.input = "hello\nworld\n";
    spec.input_len = strlen(spec.input);
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    size_t n;
    assert_string_equal(child_stdout(c, &n), "hello\nworld\n");
    assert_int_equal(n, 12);
    int code;
    assert_int_equal(child_failure(c, &code), CHILD_OK);
    child_free(c);
}

static void test_environment_is_exactly_the_one_given(void **state)
{
    (void)state;
    setenv("CHILD_TEST_INHERITED", "leaked", 1);
    char *env[] = {"CHILD_TEST_VAR=given value", NULL};
    char *argv[4];
    child_spec spec = script_spec(
        argv, "printf '%s|%s' \"$CHILD_TEST_VAR\" \"${CHILD_TEST_INHERITED-unset}\"", env);
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    unsetenv("CHILD_TEST_INHERITED");
    size_t n;
    assert_string_equal(child_stdout(c, &n), "given value|unset");
    child_free(c);
}

static void test_stdout_is_capped(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "printf 0123456789; printf abcdefghij; echo more", NULL);
    spec.stdout_max = 15;
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    size_t n;
    assert_string_equal(child_stdout(c, &n), "0123456789abcde");
    assert_int_equal(n, 15);
    child_free(c);
}

static void test_no_stdout_is_empty(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "exit 0", NULL);
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    run(c, 10000, &status);
    size_t n = 99;
    assert_string_equal(child_stdout(c, &n), "");
    assert_int_equal(n, 0);
    bool cut = true;
    child_stderr_tail(c, &n, &cut);
    assert_int_equal(n, 0);
    assert_false(cut);
    child_free(c);
}

static void test_stderr_keeps_the_tail(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "printf abc >&2; exit 4", NULL);
    spec.stderr_tail = 8;
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 4);
    size_t n;
    bool cut;
    const char *tail = child_stderr_tail(c, &n, &cut);
    assert_int_equal(n, 3);
    assert_memory_equal(tail, "abc", 3);
    assert_false(cut);
    child_free(c);

    /* Several writes, together longer than the tail: only the last 8 bytes stay. */
    spec = script_spec(argv,
                       "printf 0123 >&2; sleep 0.05; printf 456789 >&2; sleep 0.05; "
                       "printf ab >&2",
                       NULL);
    spec.stderr_tail = 8;
    c = child_new(&spec);
    assert_non_null(c);
    run(c, 10000, &status);
    tail = child_stderr_tail(c, &n, &cut);
    assert_int_equal(n, 8);
    assert_memory_equal(tail, "456789ab", 8);
    assert_true(cut);
    child_free(c);

    /* Exactly the tail's size in one write: nothing was dropped. */
    spec = script_spec(argv, "printf 01234567 >&2", NULL);
    spec.stderr_tail = 8;
    c = child_new(&spec);
    assert_non_null(c);
    run(c, 10000, &status);
    tail = child_stderr_tail(c, &n, &cut);
    assert_int_equal(n, 8);
    assert_memory_equal(tail, "01234567", 8);
    assert_false(cut);
    child_free(c);
}

static void test_killed_by_signal(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "kill -TERM $$", NULL);
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGTERM);
    child_free(c);
}

static void test_deadline_passes(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "sleep 30 & sleep 30", NULL);
    child *c = child_new(&spec);
    assert_non_null(c);
    int64_t start = clock_mono_ms();
    int status;
    assert_int_equal(run(c, 300, &status), CHILD_TIMED_OUT);
    int64_t elapsed = clock_mono_ms() - start;
    assert_true(elapsed >= 250);
    assert_true(elapsed < 2000);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    child_free(c);
}

static void test_background_process_holding_stdout(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "sleep 30 & echo done", NULL);
    spec.drain_ms = 100;
    child *c = child_new(&spec);
    assert_non_null(c);
    int64_t start = clock_mono_ms();
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    assert_true(clock_mono_ms() - start < 1500);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    size_t n;
    assert_string_equal(child_stdout(c, &n), "done\n");
    child_free(c);
}

static void test_unread_input(void **state)
{
    (void)state;
    void (*old)(int) = signal(SIGPIPE, SIG_DFL); /* a stray SIGPIPE would kill the test */
    size_t len = (size_t)1 << 20;
    char *input = malloc(len);
    assert_non_null(input);
    memset(input, 'x', len);
    char *argv[4];
    child_spec spec = script_spec(argv, "exec 0<&-; echo ok", NULL);
    spec.input = input;
    spec.input_len = len;
    child *c = child_new(&spec);
    assert_non_null(c);
    int status;
    assert_int_equal(run(c, 10000, &status), CHILD_EXITED);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    size_t n;
    assert_string_equal(child_stdout(c, &n), "ok\n");
    child_free(c);
    free(input);
    signal(SIGPIPE, old);
}

static void test_spawn_failure(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "exit 0", NULL);
    spec.path = "/nonexistent/program";
    child *c = child_new(&spec);
    assert_non_null(c);
    assert_int_equal(child_start(c), ENOENT);
    int code;
    assert_int_equal(child_failure(c, &code), CHILD_SPAWN);
    assert_int_equal(code, ENOENT);
    child_kill_group(c); /* not started: nothing to kill */
    child_free(c);
}

static void test_free_kills_a_running_child(void **state)
{
    (void)state;
    char *argv[4];
    child_spec spec = script_spec(argv, "sleep 30", NULL);
    child *c = child_new(&spec);
    assert_non_null(c);
    assert_int_equal(child_start(c), 0);
    int64_t start = clock_mono_ms();
    child_free(c); /* kills the group and reaps: returns at once, leaves no zombie */
    assert_true(clock_mono_ms() - start < 2000);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    child_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_reaches_stdin),
        cmocka_unit_test(test_environment_is_exactly_the_one_given),
        cmocka_unit_test(test_stdout_is_capped),
        cmocka_unit_test(test_no_stdout_is_empty),
        cmocka_unit_test(test_stderr_keeps_the_tail),
        cmocka_unit_test(test_killed_by_signal),
        cmocka_unit_test(test_deadline_passes),
        cmocka_unit_test(test_background_process_holding_stdout),
        cmocka_unit_test(test_unread_input),
        cmocka_unit_test(test_spawn_failure),
        cmocka_unit_test(test_free_kills_a_running_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
