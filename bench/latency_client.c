/*
 * latency_client — submit → done latency of taskd, one task at a time, from a C client.
 *
 *   latency_client PORT N WARMUP POLL_MS FIRST_I OUT.json
 *
 * On one keep-alive connection to 127.0.0.1:PORT: WARMUP unrecorded tasks, then N, each
 * POST /tasks {"task_type":"BENCH","data":{"i":FIRST_I+j}}, then GET /tasks/{id} until its
 * status is COMPLETED or FAILED, sleeping POLL_MS ms between GETs; the latency is from sending
 * the POST to reading the GET that shows COMPLETED. The same steps as bench/pipeline.sh's
 * Python client and bench/peers.js's clients, without their interpreter in the round trips:
 * what a request costs the client here is a write and a read of a few hundred bytes. Writes
 * OUT.json in the Python client's shape (p50_ms, post_p50_ms, polls_mean, ...).
 */
#include "http_client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_S 10.0

static void sleep_ms(double ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms * 1e6) % 1000000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The p-th percentile (nearest rank) of sorted v[0..n). */
static double pct(const double *v, size_t n, double p)
{
    if (!n)
        return 0;
    double r = p / 100.0 * (double)n;
    size_t k = (size_t)r + ((double)(size_t)r < r); /* ceil */
    k = k ? k - 1 : 0;
    return v[k < n ? k : n - 1];
}

/* The problems met, counted by kind ("POST 503", "GET 404", "timeout", "FAILED", ...), in the
 * order first met; kinds past the table's room are counted as "other". */
#define MAX_KINDS 16
static struct {
    char name[48];
    long count;
} kinds[MAX_KINDS];
static size_t n_kinds;
static long other_kinds;

static void note(const char *name)
{
    size_t i = 0;
    while (i < n_kinds && strcmp(kinds[i].name, name) != 0)
        i++;
    if (i == MAX_KINDS) {
        other_kinds++;
        return;
    }
    if (i == n_kinds)
        snprintf(kinds[n_kinds++].name, sizeof kinds[i].name, "%s", name);
    kinds[i].count++;
}

/* A request's problem: its status, or what kept it from having one or from being read. */
static void note_request(const char *method, bool answered, int status, const char *expect)
{
    char name[48];
    if (!answered)
        snprintf(name, sizeof name, "%s: no answer", method);
    else if (expect)
        snprintf(name, sizeof name, "%s %d without %s", method, status, expect);
    else
        snprintf(name, sizeof name, "%s %d", method, status);
    note(name);
}

/* ", \"key\": v" with v to 3 decimals, or null when it stands on no sample (count 0). */
static void put_ms(FILE *out, const char *key, size_t count, double v)
{
    if (count)
        fprintf(out, ", \"%s\": %.3f", key, v);
    else
        fprintf(out, ", \"%s\": null", key);
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s PORT N WARMUP POLL_MS FIRST_I OUT.json\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    long n = atol(argv[2]), warmup = atol(argv[3]), first_i = atol(argv[5]);
    double poll_ms = atof(argv[4]);
    if (port <= 0 || n <= 0 || warmup < 0 || poll_ms < 0) {
        fprintf(stderr, "latency_client: bad arguments\n");
        return 2;
    }
    double *lat = calloc((size_t)n, sizeof *lat), *post = calloc((size_t)n, sizeof *post);
    double *get_rtt = NULL;
    size_t n_rtt = 0, cap_rtt = 0, ok = 0;
    long polls = 0;
    int fd = connect_to(port, TIMEOUT_S);
    if (!lat || !post || fd < 0) {
        fprintf(stderr, "latency_client: cannot connect to 127.0.0.1:%d\n", port);
        return 1;
    }
    static char buf[1 << 16];
    char req[512];
    for (long j = 0; j < warmup + n; j++) {
        char body[96];
        int blen = snprintf(body, sizeof body, "{\"task_type\":\"BENCH\",\"data\":{\"i\":%ld}}",
                            first_i + j);
        int rlen = snprintf(req, sizeof req,
                            "POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                            blen, body);
        double t0 = now_s();
        int status = 0;
        const char *rbody = NULL;
        char id[64], st[32] = "";
        bool answered =
            send_all(fd, req, (size_t)rlen) && read_response(fd, buf, sizeof buf, &status, &rbody);
        if (!answered || status != 201 || !json_string(rbody, "id", id, sizeof id)) {
            note_request("POST", answered, status, answered && status == 201 ? "an id" : NULL);
            close(fd);
            if ((fd = connect_to(port, TIMEOUT_S)) < 0) {
                note("no connection (the rest not sent)");
                break;
            }
            continue;
        }
        double t1 = now_s(), t2 = t1;
        long k = 0;
        bool done = false;
        while (!done) {
            rlen =
                snprintf(req, sizeof req, "GET /tasks/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", id);
            double g0 = now_s();
            answered = send_all(fd, req, (size_t)rlen) &&
                       read_response(fd, buf, sizeof buf, &status, &rbody);
            if (!answered || status != 200 || !json_string(rbody, "status", st, sizeof st)) {
                note_request("GET", answered, status,
                             answered && status == 200 ? "a status" : NULL);
                break;
            }
            t2 = now_s();
            k++;
            if (n_rtt == cap_rtt) {
                cap_rtt = cap_rtt ? 2 * cap_rtt : 1024;
                double *g = realloc(get_rtt, cap_rtt * sizeof *g);
                if (!g)
                    return 1;
                get_rtt = g;
            }
            get_rtt[n_rtt++] = t2 - g0;
            done = strcmp(st, "COMPLETED") == 0 || strcmp(st, "FAILED") == 0;
            if (!done && t2 - t0 > TIMEOUT_S) {
                note("timeout");
                break;
            }
            if (!done)
                sleep_ms(poll_ms);
        }
        if (!done || strcmp(st, "COMPLETED") != 0) {
            if (done)
                note(st); /* FAILED */
            if (!done) {
                close(fd);
                if ((fd = connect_to(port, TIMEOUT_S)) < 0) {
                    note("no connection (the rest not sent)");
                    break;
                }
            }
            continue;
        }
        if (j >= warmup) {
            lat[ok] = (t2 - t0) * 1000;
            post[ok] = (t1 - t0) * 1000;
            ok++;
            polls += k;
        }
    }
    if (fd >= 0)
        close(fd);
    double mean = 0;
    for (size_t i = 0; i < ok; i++)
        mean += lat[i] / (double)(ok ? ok : 1);
    qsort(lat, ok, sizeof *lat, cmp_double);
    qsort(post, ok, sizeof *post, cmp_double);
    qsort(get_rtt, n_rtt, sizeof *get_rtt, cmp_double);
    FILE *out = fopen(argv[6], "w");
    if (!out) {
        fprintf(stderr, "latency_client: cannot write %s\n", argv[6]);
        return 1;
    }
    fprintf(out, "{\"client\": \"c\", \"n\": %ld, \"ok\": %zu, \"problems\": {", n, ok);
    for (size_t i = 0; i < n_kinds; i++)
        fprintf(out, "%s\"%s\": %ld", i ? ", " : "", kinds[i].name, kinds[i].count);
    if (other_kinds)
        fprintf(out, "%s\"other\": %ld", n_kinds ? ", " : "", other_kinds);
    fputc('}', out);
    /* No task measured, no figure: null, as the Python client writes, where a 0 would read as
     * a latency (and meet its target). */
    put_ms(out, "p50_ms", ok, pct(lat, ok, 50));
    put_ms(out, "p90_ms", ok, pct(lat, ok, 90));
    put_ms(out, "p99_ms", ok, pct(lat, ok, 99));
    put_ms(out, "max_ms", ok, ok ? lat[ok - 1] : 0);
    put_ms(out, "mean_ms", ok, mean);
    put_ms(out, "post_p50_ms", ok, pct(post, ok, 50));
    put_ms(out, "post_p99_ms", ok, pct(post, ok, 99));
    put_ms(out, "polls_mean", ok, ok ? (double)polls / (double)ok : 0);
    put_ms(out, "get_rtt_p50_ms", n_rtt, pct(get_rtt, n_rtt, 50) * 1000);
    fputs("}\n", out);
    fclose(out);
    free(lat);
    free(post);
    free(get_rtt);
    return ok == (size_t)n ? 0 : 1;
}
