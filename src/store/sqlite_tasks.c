/*
 * sqlite_tasks — the writer's task writes, each inside the batch's
 * transaction: a creation (its idempotency key, its id, its data kept apart
 * when large), a change of status (a report, a PATCH, a client's claim and its
 * lease), a claim again of a redelivered task and a status forced outside the
 * PATCH rules (a dead letter, a redrive); with each its change record, which
 * the broker's feed is told of (sq_feed.record), its history entry, and a note
 * of the task for what the batch does after its commit. The broker's jobs
 * claim and fail tasks through them; the writer (store_sqlite.c) applies the
 * port's writes with them. See sqlite_internal.h.
 */
#include "sqlite_internal.h"
#include "util/clock.h"

#include "core/attrval.h"
#include "core/sbuf.h"
#include "core/uuid7.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* A task whose data and its image take more than this keeps its data in a row of its own, and
 * no image (schema 9): the task row stays within its b-tree cell (1,002 bytes on 4 KiB pages,
 * the rest of a row taking up to about 250), so a change of status rewrites a few hundred
 * bytes, not the data in overflow pages */
#define DATA_APART_BYTES 700

/* Note a task the batch writes (a change record of it), for after_commit(). */
static void note_written(sqlite_store *s, const task *t, bool created, bool removed,
                         bool same_status)
{
    if (s->n_batch_written == s->cap_batch_written) {
        size_t cap = s->cap_batch_written ? s->cap_batch_written * 2 : 64;
        struct written_task *p = realloc(s->batch_written, cap * sizeof *p);
        if (!p) { /* a metric lost, never a write; and the cache forgets every task */
            s->batch_written_lost = true;
            return;
        }
        s->batch_written = p;
        s->cap_batch_written = cap;
    }
    struct written_task *w = &s->batch_written[s->n_batch_written++];
    memcpy(w->id, t->id, sizeof w->id);
    memcpy(w->task_type, t->task_type, sizeof w->task_type);
    w->status = t->status;
    w->created = created;
    w->removed = removed;
    w->same_status = same_status;
}

/* Writer: record entry n of a task's history, dropping the oldest but the first past the bound. */
static store_rc history_add(sqlite_store *s, const char *id, int64_t n, task_status status,
                            const char *msg, int64_t now)
{
    sqlite3_stmt *st = s->w_hist_add;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, n);
    sqlite3_bind_text(st, 3, task_status_name(status), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, msg, (int)task_history_msg_len(msg), SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    int rc = sq_step_done(st);
    if (rc != SQLITE_OK || n <= TASK_HISTORY_MAX)
        return sq_rc_of(rc);
    /* keep the latest TASK_HISTORY_MAX - 1; n = 1 is the task row's own */
    sqlite3_bind_text(s->w_hist_trim, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->w_hist_trim, 2, n - (TASK_HISTORY_MAX - 1));
    return sq_rc_of(sq_step_done(s->w_hist_trim));
}

store_rc sq_history_delete(sqlite_store *s, const char *id)
{
    sqlite3_bind_text(s->w_hist_delete, 1, id, -1, SQLITE_STATIC);
    return sq_rc_of(sq_step_done(s->w_hist_delete));
}

/* Bind one side of a change's record, from parameter first on: status, message, update time,
 * result. */
static void bind_side(sqlite3_stmt *st, int first, const task *t)
{
    sqlite3_bind_text(st, first, task_status_name(t->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, first + 1, t->status_msg ? t->status_msg : "", -1, SQLITE_STATIC);
    sq_bind_time(st, first + 2, t->updated_time);
    sq_bind_text(st, first + 3, t->result);
}

/*
 * Append a change record: a creation (old_image NULL) or a change (both) as its parts, which
 * readers put together with the task's row into images (sqlite_broker.c); a removal (new_image
 * NULL) with its whole old image, since the row goes with it.
 */
store_rc sq_write_change(sqlite_store *s, const char *event, const task *new_image,
                         const task *old_image, int64_t now)
{
    const task *any = new_image ? new_image : old_image;
    bool parts = new_image != NULL;
    sbuf *oi = &s->w_image; /* emptied, not freed: its room is kept for the next removal */
    sbuf_truncate(oi, 0);
    if (!parts && (!attrval_task_image(oi, old_image, NULL) || sbuf_failed(oi))) {
        sbuf_free(oi); /* and a failed buffer starts afresh */
        return STORE_ERROR;
    }
    sqlite3_stmt *st = s->w_change; /* its bindings cleared by its last step */
    int64_t seq = s->batch_last_seq + 1;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_text(st, 2, event, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, any->id, -1, SQLITE_STATIC);
    sq_bind_text(st, 4, parts ? NULL : oi->data);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int(st, 6, parts ? CHANGE_PARTS : CHANGE_WHOLE);
    sqlite3_bind_text(st, 7, any->task_type, -1, SQLITE_STATIC);
    if (parts && old_image) { /* a creation's new side is implied: CREATED, no message */
        bind_side(st, 8, new_image);
        bind_side(st, 12, old_image);
    }
    int rc = sq_step_done(st);
    s->batch_wrote_changes = true;
    if (rc != SQLITE_OK)
        return sq_rc_of(rc);
    s->batch_last_seq = seq;
    note_written(s, any, old_image == NULL, new_image == NULL,
                 new_image && old_image && new_image->status == old_image->status);
    return s->feed.record(s, s->batch_last_seq, event, old_image ? NULL : new_image);
}

/* Note that the database holds tasks of type t (see sqlite_store.types); false when out of
 * memory. The writer (or the opening thread, before it starts) only: it alone adds, so it
 * looks without the lock, which it takes to add. */
bool sq_note_type(sqlite_store *s, const char *t)
{
    for (size_t i = 0; i < s->n_types; i++)
        if (strcmp(s->types[i], t) == 0)
            return true;
    pthread_mutex_lock(&s->types_mu);
    if (s->n_types == s->cap_types) {
        size_t cap = s->cap_types ? 2 * s->cap_types : 8;
        void *grown = realloc(s->types, cap * sizeof *s->types);
        if (grown) {
            s->types = grown;
            s->cap_types = cap;
        }
    }
    bool ok = s->n_types < s->cap_types;
    if (ok)
        str_join(s->types[s->n_types++], sizeof *s->types, t, NULL);
    pthread_mutex_unlock(&s->types_mu);
    return ok;
}

store_rc sq_apply_create(sqlite_store *s, store_write *w)
{
    const store_new_task *nt = &w->create;
    int64_t now = w->now;
    if (now > s->latest_create)
        s->latest_create = now;
    if (nt->idempotency_key) {
        sqlite3_bind_text(s->w_idem_get, 1, nt->idempotency_key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->w_idem_get, 2, now - STORE_IDEMPOTENCY_WINDOW);
        int rc = sqlite3_step(s->w_idem_get);
        bool seen = rc == SQLITE_ROW, nomem = false;
        const char *first = seen ? sq_column_text(s->w_idem_get, 0, &nomem) : NULL;
        /* a task id that does not fit a task (a damaged or hand-edited database) is not cut to
         * fit, which names another task: its row never reads, and the key makes a new task */
        bool unfit = first && strlen(first) != TASK_ID_LEN;
        if (unfit) /* said once, the first time */
            nomem = !sq_pass_over(s, first,
                                  "an Idempotency-Key names a task whose row cannot be read; a "
                                  "create with it makes a new task (the database is damaged)",
                                  task_creation_unfit(first, ""));
        if (first && !unfit)
            memcpy(w->id, first, sizeof w->id);
        sqlite3_reset(s->w_idem_get);
        sqlite3_clear_bindings(s->w_idem_get);
        /* the key's task id not copied: the reset rolled the batch back, and the create fails
         * rather than pass for a duplicate */
        if (nomem || (seen && !first))
            return STORE_ERROR;
        if (seen && !unfit)
            return STORE_DUPLICATE;
        if (!seen && rc != SQLITE_DONE)
            return sq_rc_of(rc);
    }
    task t = {.status = TASK_CREATED,
              .status_msg = "",
              .created_time = now,
              .updated_time = TASK_NULL_TIME,
              .ttl = nt->ttl,
              .data = (char *)nt->data,
              .trace = (char *)nt->trace,
              .tracestate = (char *)nt->tracestate};
    if (s->entropy_used == 0 || s->entropy_used + 10 > sizeof s->entropy) {
        if (getrandom(s->entropy, sizeof s->entropy, 0) != (ssize_t)sizeof s->entropy)
            return STORE_ERROR;
        s->entropy_used = 0;
    }
    uuid7_next(&s->ids, (uint64_t)clock_unix_ms(), s->entropy + s->entropy_used, t.id);
    s->entropy_used += 10;
    str_join(t.task_type, sizeof t.task_type, nt->task_type, NULL);
    if (!sq_note_type(s, t.task_type)) /* before the insert: a listing by status finds it */
        return STORE_ERROR;

    size_t data_len = strlen(t.data);
    bool apart = data_len + (nt->data_image ? strlen(nt->data_image) : 0) > DATA_APART_BYTES;
    sqlite3_stmt *st = s->w_insert;
    sqlite3_bind_text(st, 1, t.id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t.task_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, t.created_time);
    sq_bind_time(st, 4, t.ttl);
    sqlite3_bind_text(st, 5, apart ? "" : t.data, -1, SQLITE_STATIC);
    sq_bind_text(st, 6, t.trace);
    sq_bind_text(st, 7, apart ? NULL : nt->data_image);
    sqlite3_bind_int(st, 8, apart);
    sq_bind_text(st, 9, t.tracestate);
    int rc = sq_step_done(st);
    if (rc == SQLITE_OK && apart) {
        st = s->w_data_put;
        sqlite3_bind_text(st, 1, t.id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, t.data, (int)data_len, SQLITE_STATIC);
        rc = sq_step_done(st);
    }
    if (rc != SQLITE_OK)
        return sq_rc_of(rc);
    if (nt->idempotency_key) {
        sqlite3_bind_text(s->w_idem_put, 1, nt->idempotency_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s->w_idem_put, 2, t.id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->w_idem_put, 3, now);
        if ((rc = sq_step_done(s->w_idem_put)) != SQLITE_OK)
            return sq_rc_of(rc);
    }
    store_rc result = sq_write_change(s, "INSERT", &t, NULL, now);
    if (result == STORE_OK)
        memcpy(w->id, t.id, sizeof t.id);
    return result;
}

/* A task as the writer loads it before changing it. */
typedef struct loaded {
    task t;
    int64_t hist_n; /* the number of its latest history entry */
} loaded;

/* Writer: load a task with everything (STORE_NOT_FOUND when absent); the caller clears t. */
static store_rc load_task(sqlite_store *s, const char *id, loaded *out)
{
    sqlite3_stmt *st = s->w_get;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    store_rc result = rc == SQLITE_DONE ? STORE_NOT_FOUND : sq_rc_of(rc);
    if (rc == SQLITE_ROW && !sq_read_task_row(st, &out->t, true))
        result = STORE_ERROR;
    /* w_get's own columns, after TASK_COLUMNS_FULL (checked at open: W_GET_OWN) */
    out->hist_n = result == STORE_OK ? sqlite3_column_int64(st, WG_HIST_N) : 0;
    if (result == STORE_OK) {
        /* NULL reads as 0: none */
        out->t.claim_expires = sqlite3_column_int64(st, WG_CLAIM_EXPIRES);
        if (!sq_dup_nullable_col(st, WG_CLAIM_KEY, &out->t.claim_key)) {
            task_clear(&out->t);
            result = STORE_ERROR;
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return result;
}

/* Writer: set a loaded task's status, message and (if not NULL) result, with its change record
 * and its history entry; with claim, a client's claim (to IN_PROGRESS), its key and lease too
 * (any other change of status ends the claim the task was under). */
static store_rc update_row(sqlite_store *s, const loaded *l, task_status status, const char *msg,
                           const char *result, int64_t now, const store_update *claim)
{
    const task *cur = &l->t;
    task next = *cur; /* borrows cur's strings; never cleared */
    next.status = status;
    next.status_msg = (char *)msg;
    next.updated_time = now;
    if (result)
        next.result = (char *)result;
    sqlite3_stmt *st = s->w_update;
    sqlite3_bind_text(st, 1, task_status_name(status), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, msg, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sq_bind_text(st, 4, result);
    sq_bind_time(st, 5, task_status_is_final(status) ? now : TASK_NULL_TIME);
    sqlite3_bind_text(st, 6, cur->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, l->hist_n + 1);
    bool claimed = claim && status == TASK_IN_PROGRESS;
    sq_bind_text(st, 8, claimed ? claim->claim_key : NULL);
    sq_bind_time(st, 9, claimed && claim->claim_expires ? claim->claim_expires : TASK_NULL_TIME);
    int rc = sq_step_done(st);
    if (rc != SQLITE_OK)
        return sq_rc_of(rc);
    store_rc out = sq_write_change(s, "MODIFY", &next, cur, now);
    return out == STORE_OK ? history_add(s, cur->id, l->hist_n + 1, status, msg, now) : out;
}

/* Writer: move the end of the lease of the client's claim that holds task id. Not a change of
 * the task as its readers see it: no change record, no history entry. */
static store_rc renew_lease(sqlite_store *s, const char *id, int64_t expires)
{
    sqlite3_stmt *st = s->w_lease;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, expires);
    return sq_rc_of(sq_step_done(st));
}

store_rc sq_apply_update(sqlite_store *s, store_write *w)
{
    const store_update *u = &w->update;
    loaded l;
    store_rc rc = load_task(s, u->id, &l);
    if (rc != STORE_OK)
        return rc;
    switch (store_update_decide(u, &l.t)) {
    case TASK_REPEAT:
        rc = store_update_renews(u, &l.t) ? renew_lease(s, u->id, u->claim_expires) : STORE_OK;
        rc = rc == STORE_OK ? STORE_REPEAT : rc;
        break;
    case TASK_CONFLICT:
        rc = STORE_CONFLICT;
        break;
    case TASK_APPLY:
        rc = update_row(s, &l, u->status, u->status_msg, u->result, w->now, u);
        break;
    }
    w->current = l.t; /* the caller clears it */
    return rc;
}

/* When the task was last claimed: its last history entry's time (IN_PROGRESS's, for a task in
 * progress), else its last update's. */
static store_rc last_claim_time(sqlite_store *s, const loaded *l, int64_t *out)
{
    sqlite3_stmt *st = s->w_hist_time;
    sqlite3_bind_text(st, 1, l->t.id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, l->hist_n);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW                      ? sqlite3_column_int64(st, 0)
           : l->t.updated_time != TASK_NULL_TIME ? l->t.updated_time
                                                 : l->t.created_time;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK : sq_rc_of(rc);
}

/*
 * Writer: record a claim of a loaded task that is IN_PROGRESS already (STORE_CONFLICT if not),
 * and, with claimed_before, whose last claim is no later than that. It is written as a change
 * (IN_PROGRESS again, msg, updated now): a change record, so the stream and /events show the
 * run again, and a history entry.
 */
static store_rc claim_again(sqlite_store *s, const loaded *l, const char *msg, int64_t now,
                            int64_t claimed_before)
{
    if (l->t.status != TASK_IN_PROGRESS)
        return STORE_CONFLICT;
    if (claimed_before) {
        int64_t last;
        store_rc got = last_claim_time(s, l, &last);
        if (got != STORE_OK)
            return got;
        if (last > claimed_before)
            return STORE_CONFLICT; /* claimed again since: that delivery runs it */
    }
    return update_row(s, l, TASK_IN_PROGRESS, msg, NULL, now, NULL);
}

store_rc sq_claim_again(sqlite_store *s, const char *id, const char *msg, int64_t now)
{
    loaded l;
    store_rc rc = load_task(s, id, &l);
    if (rc != STORE_OK)
        return rc;
    rc = claim_again(s, &l, msg, now, 0);
    task_clear(&l.t);
    return rc;
}

/* Writer: a redelivery's claim (STORE_WRITE_RECLAIM). */
store_rc sq_apply_reclaim(sqlite_store *s, store_write *w)
{
    loaded l;
    store_rc rc = load_task(s, w->update.id, &l);
    if (rc != STORE_OK)
        return rc;
    rc = claim_again(s, &l, w->update.status_msg, w->now, w->update.claimed_before);
    w->current = l.t; /* the caller clears it */
    return rc;
}

store_rc sq_force_status(sqlite_store *s, const char *id, task_status status, const char *msg,
                         int64_t now)
{
    loaded l;
    store_rc rc = load_task(s, id, &l);
    if (rc != STORE_OK)
        return rc;
    if (l.t.status != status || strcmp(l.t.status_msg, msg) != 0)
        rc = update_row(s, &l, status, msg, NULL, now, NULL);
    task_clear(&l.t);
    return rc;
}
