/*
 * router.c — the route table is data (struct route arrays registered by
 * modules); this file turns it into a segment trie and matches paths.
 *
 * Matching walks the path one '/'-separated segment at a time. A literal
 * child wins over a {param} child; if the literal branch dead-ends the walk
 * backtracks into the param branch (so /users/me and /users/{id} coexist).
 * Cost: O(segments × log(children)), no allocation unless a param needs
 * percent-decoding.
 */
#include <stdlib.h>

#include "http/http.h"

#include "core/banned.h"

enum { M_GET, M_POST, M_PUT, M_PATCH, M_DELETE, M_COUNT };
static const char *const method_names[M_COUNT] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

#define MAX_SEGMENTS 32

struct rnode {
    str_t seg;
    struct rnode **kids; /* sorted by seg */
    size_t nkids;
    struct rnode *param;
    const struct route *by_method[M_COUNT];
};

struct route_meta {
    const char *names[ROUTE_MAX_PARAMS];
    int nparams;
};

static struct route **g_routes; /* registration order */
static size_t g_nroutes, g_cap;
static struct route_meta *g_meta;
static struct rnode g_root;
static bool g_frozen;

static int method_index(str_t m)
{
    for (int i = 0; i < M_COUNT; i++)
        if (str_eq(m, str_c(method_names[i])))
            return i;
    if (str_is(m, "HEAD"))
        return M_GET;
    return -1;
}

void router_add(struct route *routes, size_t n)
{
    ASSERT(!g_frozen);
    for (size_t i = 0; i < n; i++) {
        if (g_nroutes == g_cap) {
            g_cap = g_cap ? g_cap * 2 : 64;
            g_routes = xrealloc(g_routes, st_mult(g_cap, sizeof(*g_routes)));
        }
        g_routes[g_nroutes++] = &routes[i];
    }
}

static int seg_cmp(str_t a, str_t b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    return c ? c : (a.len < b.len ? -1 : a.len > b.len);
}

static struct rnode *child_find(const struct rnode *n, str_t seg)
{
    size_t lo = 0, hi = n->nkids;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = seg_cmp(seg, n->kids[mid]->seg);
        if (c == 0)
            return n->kids[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static struct rnode *child_add(struct rnode *n, str_t seg)
{
    struct rnode *k = child_find(n, seg);
    size_t pos = 0;
    if (k)
        return k;
    k = xcalloc(1, sizeof(*k));
    k->seg = seg;
    while (pos < n->nkids && seg_cmp(n->kids[pos]->seg, seg) < 0)
        pos++;
    n->kids = xrealloc(n->kids, st_mult(n->nkids + 1, sizeof(*n->kids)));
    memmove(n->kids + pos + 1, n->kids + pos, (n->nkids - pos) * sizeof(*n->kids));
    n->kids[pos] = k;
    n->nkids++;
    return k;
}

static void insert(struct route *rt)
{
    const char *p = rt->pattern;
    struct rnode *n = &g_root;
    struct route_meta *meta = &g_meta[rt->id];
    int mi = method_index(str_c(rt->method));
    if (mi < 0 || !strcmp(rt->method, "HEAD"))
        FATAL("route %s %s: unknown method", rt->method, rt->pattern);
    if (p[0] != '/')
        FATAL("route %s: pattern must start with /", rt->pattern);
    while (*p == '/') {
        const char *s = ++p;
        while (*p && *p != '/')
            p++;
        str_t seg = str_make(s, (size_t)(p - s));
        if (seg.len == 0)
            FATAL("route %s: empty segment", rt->pattern);
        if (seg.p[0] == '{') {
            if (seg.p[seg.len - 1] != '}' || seg.len < 3 || meta->nparams == ROUTE_MAX_PARAMS)
                FATAL("route %s: bad parameter", rt->pattern);
            meta->names[meta->nparams++] = xstrndup(seg.p + 1, seg.len - 2);
            if (!n->param)
                n->param = xcalloc(1, sizeof(*n->param));
            n = n->param;
        } else {
            n = child_add(n, seg);
        }
    }
    if (n->by_method[mi])
        FATAL("route %s %s registered twice", rt->method, rt->pattern);
    n->by_method[mi] = rt;
}

void router_freeze(bool include_test_routes)
{
    size_t kept = 0;
    ASSERT(!g_frozen);
    for (size_t i = 0; i < g_nroutes; i++)
        if (include_test_routes || !(g_routes[i]->flags & ROUTE_TEST_ONLY))
            g_routes[kept++] = g_routes[i];
    g_nroutes = kept;
    g_meta = xcalloc(g_nroutes ? g_nroutes : 1, sizeof(*g_meta));
    for (size_t i = 0; i < g_nroutes; i++) {
        g_routes[i]->id = (int)i;
        insert(g_routes[i]);
    }
    g_frozen = true;
}

size_t router_count(void) { return g_nroutes; }
const struct route *router_get(size_t id) { return id < g_nroutes ? g_routes[id] : NULL; }

static bool node_has_routes(const struct rnode *n)
{
    for (int i = 0; i < M_COUNT; i++)
        if (n->by_method[i])
            return true;
    return false;
}

/* Walk segs[i..]; on success *out is the node and param_idx[] records which
 * segments bound to params. */
static const struct rnode *walk(const struct rnode *n, const str_t *segs, int nsegs, int i, int *param_segs,
                                int *nparam)
{
    if (i == nsegs)
        return node_has_routes(n) ? n : NULL;
    const struct rnode *k = child_find(n, segs[i]);
    if (k) {
        int saved = *nparam;
        const struct rnode *r = walk(k, segs, nsegs, i + 1, param_segs, nparam);
        if (r)
            return r;
        *nparam = saved;
    }
    if (n->param && *nparam < ROUTE_MAX_PARAMS) {
        param_segs[(*nparam)++] = i;
        const struct rnode *r = walk(n->param, segs, nsegs, i + 1, param_segs, nparam);
        if (r)
            return r;
        (*nparam)--;
    }
    return NULL;
}

int router_match(str_t method, str_t path, h2o_mem_pool_t *pool, struct route_match *m)
{
    str_t segs[MAX_SEGMENTS];
    int nsegs = 0, param_segs[ROUTE_MAX_PARAMS], nparam = 0;
    size_t i = 0;
    memset(m, 0, sizeof(*m));
    if (path.len == 0 || path.p[0] != '/')
        return MATCH_NOT_FOUND;
    while (i < path.len) {
        size_t s = ++i;
        while (i < path.len && path.p[i] != '/')
            i++;
        if (i == s) /* empty segment: "//", a trailing "/", or "/" itself */
            return MATCH_NOT_FOUND;
        if (nsegs == MAX_SEGMENTS)
            return MATCH_NOT_FOUND;
        segs[nsegs++] = str_make(path.p + s, i - s);
    }
    const struct rnode *n = walk(&g_root, segs, nsegs, 0, param_segs, &nparam);
    if (!n)
        return MATCH_NOT_FOUND;
    for (int k = 0; k < M_COUNT; k++)
        if (n->by_method[k])
            m->allow_mask |= 1u << k;
    int mi = method_index(method);
    const struct route *rt = mi >= 0 ? n->by_method[mi] : NULL;
    if (!rt)
        return MATCH_BAD_METHOD;
    m->route = rt;
    const struct route_meta *meta = &g_meta[rt->id];
    m->nparams = nparam;
    for (int k = 0; k < nparam; k++) {
        str_t raw = segs[param_segs[k]];
        m->names[k] = meta->names[k];
        if (memchr(raw.p, '%', raw.len) && pool) {
            char *d = h2o_mem_alloc_pool(pool, raw.len + 1);
            long dl = url_decode(raw, d, false);
            if (dl < 0)
                return MATCH_BAD_PATH;
            m->params[k] = str_make(d, (size_t)dl);
        } else if (memchr(raw.p, '%', raw.len)) {
            return MATCH_BAD_PATH;
        } else {
            m->params[k] = raw;
        }
    }
    return MATCH_OK;
}

void router_allow_header(unsigned mask, struct buf *b)
{
    bool first = true;
    for (int k = 0; k < M_COUNT; k++) {
        if (!(mask & (1u << k)))
            continue;
        if (!first)
            (void)buf_append(b, ", ", 2);
        (void)buf_puts(b, method_names[k]);
        if (k == M_GET)
            (void)buf_puts(b, ", HEAD");
        first = false;
    }
    if (!first)
        (void)buf_puts(b, ", OPTIONS");
}
