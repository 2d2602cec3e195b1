/*
 * start_bench — how long taskd takes to start: from its exec to the first 200 on GET /health.
 *
 *   start_bench [-n RUNS] [-t TASKS] [-s SEED.db] TASKD_A [TASKD_B]
 *
 * Starts each taskd RUNS times (default 10) on a fresh database, then RUNS times on a copy of a
 * database of TASKS tasks (default 100,000; -t 0 leaves it out), A and B alternating (A then B,
 * then B then A), so that the load of the machine falls on both alike. Each start runs
 * `taskd --listen 127.0.0.1:0 --db DIR/taskd.db` as a test does: the clock starts before the
 * spawn, standard error is read until the "listening" line says the address, a new connection
 * sends GET /health, and the clock stops at its 200. The times of the "tracing" and "listening"
 * lines are noted too (exec to tracing: the libraries, the options, the store's open; tracing to
 * listening: the pipeline's threads, the API, the HTTP server). Then SIGTERM, and the exit status
 * must be 0.
 *
 * The database of TASKS tasks is made once, by TASKD_A with --sync normal, TASK1_SECONDS=0 and
 * the default configuration: TASK1 tasks POSTed one at a time, the demo handler running them as
 * they come (a quarter fail), then a SIGTERM; the tasks the handler had not reached are left in
 * their queue. With -s SEED.db it is made at SEED.db and kept there, or, when that file is
 * there already (a clean stop's: no -wal), taken from it; it is copied before each start and
 * never written.
 */
#include "http_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* The longest a start, a request or a stop may take before the bench gives up. */
#define TIMEOUT_S 60.0

/* One start's times, in ms from the spawn. */
typedef struct times {
    double tracing, listening, health;
} times;

/* A running taskd: its pid, the read end of its standard error, what has been read of it, and
 * the last line wait_line() found. */
typedef struct proc {
    pid_t pid;
    int err_fd;
    char buf[1 << 16];
    size_t len;
    char line[1 << 16];
} proc;

static const char *tmp_dir;
static pid_t running; /* the taskd started last, until it is waited for */

static void remove_db(const char *db);

/* Give up: the taskd running killed, the temporary directory removed. */
static void die(const char *what)
{
    fprintf(stderr, "start_bench: %s\n", what);
    if (running > 0) {
        kill(running, SIGKILL);
        waitpid(running, NULL, 0);
    }
    if (tmp_dir) {
        char db[4096];
        snprintf(db, sizeof db, "%s/taskd.db", tmp_dir);
        remove_db(db);
        snprintf(db, sizeof db, "%s/seed.db", tmp_dir);
        remove_db(db);
        rmdir(tmp_dir);
    }
    exit(1);
}

/* Spawn taskd on db with its standard error on a pipe, extra_env (or NULL) added to the
 * environment. */
static void spawn(proc *p, const char *taskd, const char *db, const char *sync,
                  const char *extra_env)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        die("cannot make a pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    char *argv[] = {(char *)taskd, "--listen", "127.0.0.1:0", "--db",
                    (char *)db,    "--sync",   (char *)sync,  NULL};
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        die("out of memory");
    memcpy(env, environ, n * sizeof *env);
    env[n] = (char *)extra_env;
    int rc = posix_spawn(&p->pid, taskd, &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(fds[1]);
    if (rc != 0) {
        fprintf(stderr, "start_bench: cannot start %s: %s\n", taskd, strerror(rc));
        die("no taskd to measure");
    }
    running = p->pid;
    p->err_fd = fds[0];
    p->len = 0;
}

/* Read taskd's standard error until a line holding want, by the deadline; that line's time (ms
 * from t0) in *at and the line in *line (p->line, a copy: what was read after it moves to the
 * front of the buffer, over it). False when taskd ends or the deadline passes. */
static bool wait_line(proc *p, const char *want, double t0, double *at, char **line)
{
    double deadline = t0 + TIMEOUT_S;
    for (;;) {
        char *start = p->buf, *nl;
        while ((nl = memchr(start, '\n', p->len - (size_t)(start - p->buf)))) {
            *nl = '\0';
            if (strstr(start, want)) {
                *at = (now_s() - t0) * 1000;
                memcpy(p->line, start, (size_t)(nl - start) + 1);
                *line = p->line;
                /* the rest stays for the next look */
                size_t rest = p->len - (size_t)(nl + 1 - p->buf);
                memmove(p->buf, nl + 1, rest);
                p->len = rest;
                return true;
            }
            start = nl + 1;
        }
        size_t rest = p->len - (size_t)(start - p->buf);
        memmove(p->buf, start, rest);
        p->len = rest;
        if (p->len == sizeof p->buf - 1)
            p->len = 0; /* a line too long to be the one looked for */
        struct pollfd pfd = {.fd = p->err_fd, .events = POLLIN};
        int left = (int)((deadline - now_s()) * 1000);
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            return false;
        ssize_t r = read(p->err_fd, p->buf + p->len, sizeof p->buf - 1 - p->len);
        if (r <= 0)
            return false;
        p->len += (size_t)r;
        p->buf[p->len] = '\0';
    }
}

/* The port of the "listening" line's address. */
static int listening_port(const char *line)
{
    char addr[128];
    const char *colon;
    if (!json_string(line, "address", addr, sizeof addr) || !(colon = strrchr(addr, ':')))
        return -1;
    return atoi(colon + 1);
}

/* Stop taskd with SIGTERM, and a second one a second later, which aborts the handlers still
 * running (the demo handler's 10 s runs of a queue's backlog), reading its standard error to the
 * end; false unless it exits 0. */
static bool stop(proc *p)
{
    kill(p->pid, SIGTERM);
    char sink[4096];
    struct pollfd pfd = {.fd = p->err_fd, .events = POLLIN};
    double hurry_at = now_s() + 1, deadline = now_s() + TIMEOUT_S;
    for (bool hurried = false; now_s() < deadline;) {
        int n = poll(&pfd, 1, hurried ? (int)(TIMEOUT_S * 1000) : 100);
        if (n > 0 && read(p->err_fd, sink, sizeof sink) <= 0)
            break; /* its end */
        if (!hurried && now_s() >= hurry_at) {
            kill(p->pid, SIGTERM);
            hurried = true;
        }
    }
    close(p->err_fd);
    int status;
    while (waitpid(p->pid, &status, 0) < 0)
        if (errno != EINTR)
            return false;
    running = 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* One GET (body NULL) or POST of a JSON body on fd; the status, or -1 on a broken connection. */
static int request(int fd, const char *method, const char *path, const char *body)
{
    char req[512];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, path);
    if (body)
        n += snprintf(req + n, sizeof req - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      strlen(body), body);
    else
        n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    static char buf[1 << 16];
    int status = -1;
    const char *rbody;
    if ((size_t)n >= sizeof req || !send_all(fd, req, (size_t)n) ||
        !read_response(fd, buf, sizeof buf, &status, &rbody))
        return -1;
    return status;
}

/* Remove db and the files SQLite keeps beside it. */
static void remove_db(const char *db)
{
    static const char *const beside[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof beside / sizeof *beside; i++) {
        char name[4096];
        snprintf(name, sizeof name, "%s%s", db, beside[i]);
        unlink(name);
    }
}

static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC),
        out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in < 0 || out < 0)
        die("cannot copy the seed database");
    static char buf[1 << 20];
    ssize_t r;
    while ((r = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)r) != r)
            die("cannot copy the seed database");
    if (r < 0 || close(out) != 0)
        die("cannot copy the seed database");
    close(in);
}

/* Make a database of n tasks at db with taskd (see the top of this file). */
static void make_db(const char *taskd, const char *db, long n)
{
    fprintf(stderr, "start_bench: making a database of %ld tasks ...\n", n);
    double t0 = now_s(), at;
    char *line;
    proc p;
    spawn(&p, taskd, db, "normal", "TASK1_SECONDS=0");
    int port, fd;
    if (!wait_line(&p, "\"message\":\"listening\"", t0, &at, &line) ||
        (port = listening_port(line)) <= 0 || (fd = connect_to(port, TIMEOUT_S)) < 0)
        die("the taskd making the database did not start");
    for (long i = 0; i < n; i++) {
        char body[96];
        snprintf(body, sizeof body, "{\"task_type\":\"TASK1\",\"data\":{\"i\":%ld}}", i);
        if (request(fd, "POST", "/tasks", body) != 201)
            die("a POST /tasks of the database's failed");
    }
    close(fd);
    if (!stop(&p))
        die("the taskd making the database did not stop cleanly");
    fprintf(stderr, "start_bench: made in %.1f s\n", now_s() - t0);
}

/* One start of taskd on db (a copy of seed, or fresh when seed is NULL). */
static times start_once(const char *taskd, const char *seed)
{
    char db[4096];
    snprintf(db, sizeof db, "%s/taskd.db", tmp_dir);
    remove_db(db);
    if (seed)
        copy_file(seed, db);
    times t;
    char *line;
    proc p;
    double t0 = now_s();
    spawn(&p, taskd, db, "full", NULL);
    int port, fd, status = -1;
    if (!wait_line(&p, "\"message\":\"tracing\"", t0, &t.tracing, &line) ||
        !wait_line(&p, "\"message\":\"listening\"", t0, &t.listening, &line) ||
        (port = listening_port(line)) <= 0)
        die("taskd did not start (its log has no \"tracing\" and \"listening\" lines)");
    if ((fd = connect_to(port, TIMEOUT_S)) >= 0) {
        status = request(fd, "GET", "/health", NULL);
        close(fd);
    }
    t.health = (now_s() - t0) * 1000;
    if (status != 200)
        die("GET /health did not answer 200");
    if (!stop(&p))
        die("taskd did not exit 0 on SIGTERM");
    remove_db(db);
    return t;
}

/* The median of one figure of t[0..n), and its range when lo is given. */
static double median_of(const times *t, size_t n, double (*of)(const times *), double *lo,
                        double *hi)
{
    double *v = malloc(n * sizeof *v);
    if (!v)
        die("out of memory");
    for (size_t i = 0; i < n; i++)
        v[i] = of(&t[i]);
    qsort(v, n, sizeof *v, cmp_double);
    double m = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    if (lo)
        *lo = v[0], *hi = v[n - 1];
    free(v);
    return m;
}

static double health_ms(const times *t)
{
    return t->health;
}

static double tracing_ms(const times *t)
{
    return t->tracing;
}

static double listening_ms(const times *t)
{
    return t->listening - t->tracing;
}

static void report(const char *db, const char *name, const times *t, size_t n)
{
    double lo, hi, med = median_of(t, n, health_ms, &lo, &hi);
    printf("%-6s %-5s  %7.1f  %7.1f-%-7.1f  %7.1f  %9.1f\n", db, name, med, lo, hi,
           median_of(t, n, tracing_ms, NULL, NULL), median_of(t, n, listening_ms, NULL, NULL));
}

static void load_average(const char *when)
{
    char buf[64] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            strcpy(buf, "?");
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
    printf("load average %s: %s\n", when, buf);
}

int main(int argc, char **argv)
{
    long runs = 10, tasks = 100000;
    const char *seed = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "n:t:s:")) != -1) {
        if (opt == 'n')
            runs = atol(optarg);
        else if (opt == 't')
            tasks = atol(optarg);
        else if (opt == 's')
            seed = optarg;
        else
            optind = argc + 1;
    }
    if (optind > argc || argc - optind < 1 || argc - optind > 2 || runs < 1 || tasks < 0) {
        fprintf(stderr, "usage: %s [-n RUNS] [-t TASKS] [-s SEED.db] TASKD_A [TASKD_B]\n", argv[0]);
        return 2;
    }
    const char *taskd[2] = {argv[optind], argv[optind + 1]};
    size_t builds = taskd[1] ? 2 : 1;
    char dir[] = "/tmp/start_bench.XXXXXX";
    if (!(tmp_dir = mkdtemp(dir)))
        die("cannot make a temporary directory");
    signal(SIGPIPE, SIG_IGN);
    char made[4096];
    if (!seed && tasks > 0) {
        snprintf(made, sizeof made, "%s/seed.db", tmp_dir);
        make_db(taskd[0], made, tasks);
        seed = made;
    } else if (seed && access(seed, F_OK) != 0) {
        make_db(taskd[0], seed, tasks);
    }
    const char *seeds[2] = {NULL, seed};
    const char *db_names[2] = {"fresh", seed ? "seeded" : NULL};
    times *t[2][2];
    for (size_t b = 0; b < builds; b++)
        for (size_t d = 0; d < 2; d++)
            if (!(t[d][b] = calloc((size_t)runs, sizeof *t[d][b])))
                die("out of memory");
    load_average("before");
    for (size_t d = 0; d < 2 && db_names[d]; d++)
        for (long r = 0; r < runs; r++)
            for (size_t k = 0; k < builds; k++) {
                size_t b = r % 2 ? builds - 1 - k : k; /* A B, B A, ... */
                t[d][b][r] = start_once(taskd[b], seeds[d]);
            }
    load_average("after");
    printf("exec -> first 200 on GET /health, ms: median, range of %ld starts; medians of exec -> "
           "\"tracing\" and \"tracing\" -> \"listening\"\n",
           runs);
    printf("db     build   median  range            tracing  listening\n");
    for (size_t d = 0; d < 2 && db_names[d]; d++)
        for (size_t b = 0; b < builds; b++)
            report(db_names[d], b ? "B" : "A", t[d][b], (size_t)runs);
    for (size_t b = 0; b < builds; b++)
        for (size_t d = 0; d < 2; d++)
            free(t[d][b]);
    if (seed == made)
        remove_db(made);
    rmdir(tmp_dir);
    return 0;
}
