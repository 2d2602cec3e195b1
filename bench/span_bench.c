/*
 * span_bench — what a span costs the tracer's local trace view, on one thread.
 *
 *   build/span_bench [SPANS]
 *
 * Creates SPANS (default 2,000,000) spans shaped like the runner's (a name, a task id, five
 * attributes of which three strings) and hands each to a tracer whose local view keeps 16,384
 * (taskd's setting; no exporter), in 5 rounds; prints the best round's nanoseconds per span.
 * Then reads one task's 9 spans from the full view 20 times and prints the best read. Built
 * beside taskd; compare two builds by running their binaries alternately (bench/README.md).
 */
#include "trace/tracer.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOCAL_SPANS    16384 /* taskd's local view */
#define ROUNDS         5
#define READS          20
#define SPANS_PER_TASK 9

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A task id for task n (below 10^12): 36 characters. */
static void task_id(char out[37], long n)
{
    snprintf(out, 37, "01a2340a-5507-7003-aba9-%012lu", (unsigned long)n % 1000000000000UL);
}

static void take_one(tracer *t, long i)
{
    span s;
    memset(&s, 0, offsetof(span, attrs));
    strcpy(s.name, "process task1");
    s.kind = SPAN_KIND_CONSUMER;
    task_id(s.task_id, i / SPANS_PER_TASK);
    s.start_ns = i;
    s.end_ns = i + 5;
    span_set_static(&s, "messaging.system", "taskd");
    span_set_str(&s, "messaging.destination.name", "task1");
    span_set_str(&s, "messaging.message.id", "1796169422087");
    span_set_int(&s, "messaging.batch.message_count", 100);
    span_set_str(&s, "task.id", s.task_id);
    tracer_take(t, &s);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000000;
    if (n < LOCAL_SPANS) {
        fprintf(stderr, "span_bench: SPANS must be at least %d\n", LOCAL_SPANS);
        return 2;
    }
    tracer_options o = {.service_name = "span_bench", .local_capacity = LOCAL_SPANS};
    char err[256];
    tracer *t = tracer_new(&o, err, sizeof err);
    if (!t) {
        fprintf(stderr, "span_bench: %s\n", err);
        return 1;
    }
    double best = 1e9;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_s();
        for (long i = 0; i < n; i++)
            take_one(t, (long)r * n + i);
        double per = (now_s() - t0) / (double)n * 1e9;
        best = per < best ? per : best;
    }
    printf("create and take: %.0f ns per span (best of %d rounds of %ld)\n", best, ROUNDS, n);

    /* a task whose spans are all still in the view */
    char id[37];
    task_id(id, ((long)ROUNDS * n - LOCAL_SPANS / 2) / SPANS_PER_TASK);
    double best_read = 1e9;
    size_t found = 0;
    for (int r = 0; r < READS; r++) {
        span *got;
        double t0 = now_s();
        found = tracer_task_spans(t, id, &got);
        double dt = now_s() - t0;
        best_read = dt < best_read ? dt : best_read;
        for (size_t k = 0; k < found; k++)
            span_clear(&got[k]);
        free(got);
    }
    printf("one task's trace from a full view: %.3f ms for %zu spans (best of %d)\n",
           best_read * 1e3, found, READS);
    tracer_free(t);
    return found == SPANS_PER_TASK ? 0 : 1;
}
