/*
 * query.c — query-string parsing and percent-decoding (untrusted input:
 * fuzzed by tests/fuzz/fuzz_query.c).
 */
#include "http/http.h"

#include "core/banned.h"

int query_parse(str_t qs, struct query *q, query_alloc_fn alloc, void *ud)
{
    size_t i = 0;
    q->n = 0;
    while (i < qs.len) {
        size_t s = i, eq = SIZE_MAX;
        while (i < qs.len && qs.p[i] != '&') {
            if (qs.p[i] == '=' && eq == SIZE_MAX)
                eq = i;
            i++;
        }
        size_t e = i;
        i++; /* skip '&' */
        if (e == s)
            continue; /* "a=1&&b=2" */
        if (q->n == QUERY_MAX_PARAMS)
            return QUERY_ETOOMANY;
        str_t rk = eq == SIZE_MAX ? str_make(qs.p + s, e - s) : str_make(qs.p + s, eq - s);
        str_t rv = eq == SIZE_MAX ? str_make("", 0) : str_make(qs.p + eq + 1, e - eq - 1);
        char *k = alloc(ud, rk.len + 1), *v = alloc(ud, rv.len + 1);
        long kl = url_decode(rk, k, true), vl = url_decode(rv, v, true);
        if (kl < 0 || vl < 0 || kl == 0)
            return QUERY_EBAD;
        q->p[q->n].key = str_make(k, (size_t)kl);
        q->p[q->n].value = str_make(v, (size_t)vl);
        q->n++;
    }
    return QUERY_OK;
}

const str_t *query_get(const struct query *q, const char *key)
{
    str_t k = str_c(key);
    for (int i = 0; i < q->n; i++)
        if (str_eq(q->p[i].key, k))
            return &q->p[i].value;
    return NULL;
}
