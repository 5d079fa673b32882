/* libFuzzer target: the resource engine's filter= expressions, bracket
 * filters and sort specs (untrusted query input). Invariants beyond "no
 * crash": an error leaves no half-written SQL and no arguments behind, a
 * success has exactly as many `?` placeholders as arguments, and the SQL
 * contains no byte of the input that is not an identifier of the descriptor
 * (every literal is an argument). */
#include <stdlib.h>

#include "resource/resource.h"

static const char *const st[] = {"draft", "published", NULL};
static const struct rfield fields[] = {
    {.name = "title", .type = RF_TEXT, .flags = RF_FILTER | RF_SORT},
    {.name = "price", .type = RF_MONEY, .flags = RF_FILTER | RF_SORT},
    {.name = "active", .type = RF_BOOL, .flags = RF_FILTER},
    {.name = "status", .type = RF_ENUM, .values = st, .flags = RF_FILTER | RF_SORT},
    {.name = "at", .type = RF_TIME, .flags = RF_FILTER | RF_SORT | RF_NULLABLE},
    {.name = "tags", .type = RF_STRLIST, .flags = RF_FILTER},
    {.name = "owner_id", .type = RF_TEXT, .flags = RF_FILTER},
    {0}};
static const struct resource res = {.name = "things", .singular = "thing", .path = "/api/v1/things",
                                    .table = "things", .fields = fields, .owner = "owner_id", .read = RP_OWNER};

struct arena {
    void **p;
    size_t n, cap;
};
static void *arena_alloc(void *ud, size_t n)
{
    struct arena *a = ud;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->p = xrealloc(a->p, a->cap * sizeof(void *));
    }
    return a->p[a->n++] = xmalloc(n ? n : 1);
}

static size_t count_q(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '?';
    return n;
}

static void check(struct rq *q, int rc, size_t mark, int nargs)
{
    if (rc) {
        if (q->sql.len != mark || q->nargs != nargs || (q->err_status != 400 && q->err_status != 422))
            abort();
    } else if (count_q(buf_cstr(&q->sql)) != (size_t)q->nargs) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena a = {0};
    str_t in = str_make((const char *)data, size);
    for (int k = 0; k < 2; k++) {
        struct rq q;
        rq_init(&q, &res, k ? DB_POSTGRES : DB_SQLITE, STRLIT("me"), 0, arena_alloc, &a);
        check(&q, rq_filter_expr(&q, in), 0, 0);
        rq_release(&q);
        /* key=value as a bracket filter */
        rq_init(&q, &res, k ? DB_POSTGRES : DB_SQLITE, STRLIT("me"), 0, arena_alloc, &a);
        const char *eq = memchr(in.p, '=', in.len);
        if (eq && eq > in.p) {
            str_t key = str_make(in.p, (size_t)(eq - in.p)), val = str_make(eq + 1, in.len - key.len - 1);
            check(&q, rq_filter_bracket(&q, key, val), 0, 0);
        }
        rq_release(&q);
        /* sort */
        rq_init(&q, &res, k ? DB_POSTGRES : DB_SQLITE, STRLIT("me"), 0, arena_alloc, &a);
        struct buf o = BUF_INIT(4096);
        if (rq_sort(&q, in, &o) == 0 && count_q(buf_cstr(&o)) != 0)
            abort();
        buf_free(&o);
        rq_release(&q);
    }
    for (size_t i = 0; i < a.n; i++)
        free(a.p[i]);
    free(a.p);
    return 0;
}
