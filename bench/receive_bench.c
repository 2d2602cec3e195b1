/*
 * receive_bench — what a batch's receive spans cost the work step, on one thread.
 *
 *   build/receive_bench [MESSAGES]
 *
 * Opens the delivery spans of a batch of MESSAGES (default 1,000, the most a binding receives at
 * once) through work_begin(), each message's task claimed elsewhere before (no claim span, no
 * store), in two shapes: every message sent by a producer of its own (each receive span links
 * SPAN_MAX_LINKS of the others and counts the rest as dropped), and every one by the same
 * producer (nothing to link). Prints the best of 20 batches of each, in microseconds a batch. To
 * compare two builds, run their binaries alternately (bench/README.md).
 */
#include "runner/work.h"
#include "core/tracectx.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCHES 20

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Message i of a batch, sent by producer p (a trace of its own), its task claimed elsewhere. */
static void fill(work_item *it, size_t i, size_t p)
{
    work_item_reset(it);
    snprintf(it->id, sizeof it->id, "01a2340a-5507-7003-aba9-%012zu", i % 1000000000000u);
    snprintf(it->type, sizeof it->type, "TASK1");
    it->body = "{}";
    it->queue = "jobs";
    char traceparent[56];
    snprintf(traceparent, sizeof traceparent, "00-%032zx-b7ad6b7169203331-01", p + 1);
    it->traced = tracectx_parse_traceparent(traceparent, &it->producer);
    it->sent_ms = (int64_t)(now_s() * 1e3);
    it->receive_count = 1;
    it->message_number = (int64_t)i;
    it->unclaimed = "claimed elsewhere";
}

/* The best of BATCHES batches of n, in seconds; producers: how many send them, in turn. */
static double best_batch(work_item *items, size_t n, size_t producers)
{
    work_env e = {0};
    double best = 1e9;
    for (int b = 0; b < BATCHES; b++) {
        for (size_t i = 0; i < n; i++)
            fill(&items[i], i, i % producers);
        double t0 = now_s();
        work_begin(&e, items, n);
        double dt = now_s() - t0;
        best = dt < best ? dt : best;
        for (size_t i = 0; i < n; i++) {
            span_clear(&items[i].receive);
            span_clear(&items[i].process);
        }
    }
    return best;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    if (n < 1 || n > 1000000) {
        fprintf(stderr, "receive_bench: MESSAGES must be from 1 to 1000000\n");
        return 2;
    }
    work_item *items = calloc((size_t)n, sizeof *items);
    if (!items) {
        fprintf(stderr, "receive_bench: out of memory\n");
        return 1;
    }
    double each = best_batch(items, (size_t)n, (size_t)n);
    printf("a batch of %ld, each by a producer of its own: %.1f us (best of %d)\n", n, each * 1e6,
           BATCHES);
    double one = best_batch(items, (size_t)n, 1);
    printf("a batch of %ld, all by one producer: %.1f us (best of %d)\n", n, one * 1e6, BATCHES);
    free(items);
    return 0;
}
