/*
 * create_bench — what the DynamoDB store spends on a new task before its call goes out.
 *
 *   build/create_bench [RUNS]
 *
 * Creates a task of about 250 KB of data RUNS times (default 200) through the DynamoDB store,
 * with a deadline already past, so no request is sent: each create is the store's own work, its
 * item's sizing (for the room it must leave) and its request's writing. Two shapes of data: one
 * string of 250 KB, and 250 KB of small objects (a number, a string and a boolean each). Prints
 * the median microseconds of a create for each. Built beside the Lambda bootstrap; compare two
 * builds by running their binaries alternately (bench/README.md).
 */
#include "aws/aws_http.h"
#include "aws/dynamodb_store.h"
#include "core/attrval.h"
#include "core/sbuf.h"
#include "util/clock.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DATA_BYTES (250 * 1000)

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* {"blob":"xxx..."} of about DATA_BYTES. */
static char *blob_data(void)
{
    sbuf b = {0};
    sbuf_puts(&b, "{\"blob\":\"");
    for (size_t i = 0; i < DATA_BYTES; i++)
        sbuf_putc(&b, 'x');
    sbuf_puts(&b, "\"}");
    return sbuf_failed(&b) ? NULL : sbuf_take(&b, NULL);
}

/* {"rows":[{"id":..., "name":"...", "ok":true}, ...]} of about DATA_BYTES. */
static char *rows_data(void)
{
    sbuf b = {0};
    sbuf_puts(&b, "{\"rows\":[");
    for (long i = 0; b.len < DATA_BYTES; i++) {
        char row[96];
        snprintf(row, sizeof row, "%s{\"id\":%ld,\"name\":\"row-%ld\",\"ok\":true}", i ? "," : "",
                 1000000 + i * 37, i);
        sbuf_puts(&b, row);
    }
    sbuf_puts(&b, "]}");
    return sbuf_failed(&b) ? NULL : sbuf_take(&b, NULL);
}

static void run(store *s, const char *name, const char *data, int runs)
{
    size_t size = 0;
    char *image = attrval_from_text(data, &size);
    double *us = malloc(sizeof *us * (size_t)runs);
    if (!image || !us) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    store_new_task t = {.task_type = "TASK2",
                        .data = data,
                        .data_image = image,
                        .data_size = size,
                        .ttl = TASK_NULL_TIME};
    for (int i = 0; i < runs; i++) {
        char id[37];
        aws_set_deadline(1); /* past: nothing is sent */
        double start = now_us();
        store_rc rc = store_create_task(s, &t, clock_unix_ms() / 1000, id);
        us[i] = now_us() - start;
        if (rc == STORE_OK || rc == STORE_INVALID) {
            fprintf(stderr, "%s: unexpected %s\n", name, store_rc_name(rc));
            exit(1);
        }
    }
    qsort(us, (size_t)runs, sizeof *us, by_value);
    printf("%-5s %zu bytes of data: median %.0f us a create (of %d)\n", name, strlen(data),
           us[runs / 2], runs);
    free(us);
    free(image);
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 200;
    if (runs < 1)
        runs = 200;
    log_setup((log_level)(LOG_ERROR + 1), "create_bench"); /* no lines: each create is "busy" */
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "bench", 1);
    setenv("AWS_REGION", "eu-west-1", 1);
    setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9", 1);
    char err[256] = "";
    aws_client *c = aws_client_new(AWS_DYNAMODB, err, sizeof err);
    dynamodb_store_options so = {.table = "tasks", .client = c, .retention_grace = 3600};
    store *s = c ? dynamodb_store_open(&so, err, sizeof err) : NULL;
    if (!s) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char *blob = blob_data(), *rows = rows_data();
    if (!blob || !rows) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    run(s, "blob", blob, runs);
    run(s, "rows", rows, runs);
    free(blob);
    free(rows);
    store_close(s);
    aws_client_free(c);
    return 0;
}
