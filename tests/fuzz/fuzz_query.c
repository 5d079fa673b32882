/* libFuzzer target: query strings and request paths (untrusted input).
 * Checks invariants, not just crashes: decoded values are valid UTF-8
 * without NUL, and the parser never returns more than QUERY_MAX_PARAMS. */
#include <stdlib.h>

#include "core/json.h"
#include "http/http.h"

static int dummy(struct req *r)
{
    (void)r;
    return 0;
}

static struct route routes[] = {
    {.method = "GET", .pattern = "/api/v1/users/me", .handler = dummy},
    {.method = "GET", .pattern = "/api/v1/users/{id}", .handler = dummy},
    {.method = "GET", .pattern = "/api/v1/users/{id}/keys/{key}", .handler = dummy},
    {.method = "POST", .pattern = "/api/v1/things", .handler = dummy},
};

static void *pool_alloc(void *ud, size_t n) { return h2o_mem_alloc_pool((h2o_mem_pool_t *)ud, n); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    h2o_mem_pool_t pool;
    struct query q;
    struct route_match m;
    if (!init) {
        router_add(routes, sizeof(routes) / sizeof(routes[0]));
        router_freeze(false);
        init = 1;
    }
    h2o_mem_init_pool(&pool);
    str_t in = str_make((const char *)data, size);
    if (query_parse(in, &q, pool_alloc, &pool) == QUERY_OK) {
        if (q.n > QUERY_MAX_PARAMS)
            abort();
        for (int i = 0; i < q.n; i++)
            if (!utf8_valid(q.p[i].key) || !utf8_valid(q.p[i].value) || q.p[i].key.len == 0)
                abort();
    }
    if (router_match(STRLIT("GET"), in, &pool, &m) == MATCH_OK)
        for (int i = 0; i < m.nparams; i++)
            if (m.params[i].len > size)
                abort();
    h2o_mem_clear_pool(&pool);
    return 0;
}
