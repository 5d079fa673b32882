/*
 * filter.c — filters, sort and the full-text condition of the resource
 * engine, compiled to parameterised SQL over the table alias `t`.
 *
 * Design: a recursive-descent parser over a small lexer emits SQL as it
 * goes (no tree). Identifiers in the output come only from the descriptor
 * (the input only selects one of them); every literal becomes a `?`
 * argument. Limits keep the work bounded whatever the input: the
 * expression length, nesting depth and number of comparisons are capped.
 *
 * Grammar (a PocketBase subset):
 *   expr    := and ( "||" and )*
 *   and     := primary ( "&&" primary )*
 *   primary := "(" expr ")" | field op value
 *   op      := = | != | > | >= | < | <= | ~ | !~
 *   value   := 'str' | "str" | number | true | false | null | @now | @me
 * Strings take backslash escapes for the quote and the backslash.
 *
 * Semantics: ~ is a case-insensitive "contains" (% and _ in the value are
 * literal); != and !~ are true for NULL columns; "= null" / "!= null" test
 * for NULL. Text compares with < > lexicographically.
 */
#include <stdio.h>

#include "core/timeutil.h"
#include "resource/resource.h"

#include "core/banned.h"

#define EXPR_MAX_LEN 2048
#define EXPR_MAX_DEPTH 16
#define EXPR_MAX_TERMS 40
#define IN_MAX_VALUES 50
#define SORT_MAX_KEYS 4

static const struct rfield implicit_fields[] = {
    {.name = "id", .type = RF_TEXT, .flags = RF_FILTER | RF_SORT},
    {.name = "created_at", .type = RF_TIME, .flags = RF_FILTER | RF_SORT},
    {.name = "updated_at", .type = RF_TIME, .flags = RF_FILTER | RF_SORT},
};

const struct rfield *resource_field(const struct resource *res, str_t name)
{
    for (size_t i = 0; i < ARRAY_LEN(implicit_fields); i++)
        if (str_eq(name, str_c(implicit_fields[i].name)))
            return &implicit_fields[i];
    for (const struct rfield *f = res->fields; f && f->name; f++)
        if (str_eq(name, str_c(f->name)))
            return f;
    return NULL;
}

void rq_init(struct rq *q, const struct resource *res, enum db_kind kind, str_t me, int64_t now_ms,
             void *(*alloc)(void *, size_t), void *ud)
{
    memset(q, 0, sizeof(*q));
    q->res = res;
    q->kind = kind;
    q->me = me;
    q->now_ms = now_ms;
    q->alloc = alloc;
    q->ud = ud;
    buf_init(&q->sql, BUF_MAX_SQL);
    buf_init(&q->err_msg, 512);
}

/* Without an allocator the rq keeps its literals in heap blocks of its own,
 * chained through their first bytes and freed by rq_release(). */
static void *rq_alloc(struct rq *q, size_t n)
{
    if (q->alloc)
        return q->alloc(q->ud, n);
    void **blk = xmalloc(st_add(sizeof(void *), n ? n : 1));
    blk[0] = q->heap;
    q->heap = blk;
    return blk + 1;
}

void rq_release(struct rq *q)
{
    buf_free(&q->sql);
    buf_free(&q->err_msg);
    while (q->heap) {
        void **blk = q->heap;
        q->heap = blk[0];
        free(blk);
    }
}

static char *rq_dup(struct rq *q, str_t s)
{
    char *p = rq_alloc(q, s.len + 1);
    if (s.len)
        memcpy(p, s.p, s.len);
    p[s.len] = '\0';
    return p;
}

static int rq_fail(struct rq *q, int status, str_t field, const char *fmt, ...) PRINTF_LIKE(4, 5);
static int rq_fail(struct rq *q, int status, str_t field, const char *fmt, ...)
{
    va_list ap;
    if (q->err_status)
        return -1; /* the first error wins */
    q->err_status = status;
    q->err_field = rq_dup(q, field);
    va_start(ap, fmt);
    (void)buf_vprintf(&q->err_msg, fmt, ap);
    va_end(ap);
    return -1;
}

int rq_arg(struct rq *q, str_t param, db_arg a)
{
    if (ARGS_ADD(q->args, q->nargs, a))
        return rq_fail(q, 422, param, "too many values: filters and search together take at most %d", RQ_MAX_ARGS);
    return 0;
}

static int add_arg(struct rq *q, db_arg a)
{
    return rq_arg(q, STRLIT("filter"), a);
}

/* ---- comparisons (shared by expressions and bracket filters) ---- */

enum op { OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE, OP_LIKE, OP_NLIKE };
static const char *const op_sql[] = {"=", "<>", ">", ">=", "<", "<="};

enum vkind { V_STR, V_NUM, V_BOOL, V_NULL, V_NOW, V_ME };
struct value {
    enum vkind kind;
    str_t s; /* V_STR: decoded; V_NUM: the text */
    bool b;
};

static bool text_like(enum rf_type t)
{
    return t == RF_TEXT || t == RF_ENUM || t == RF_REF || t == RF_I18N || t == RF_JSON || t == RF_STRLIST;
}

/* "%" + value with \ % _ escaped + "%" */
static str_t like_pattern(struct rq *q, str_t v)
{
    char *p = rq_alloc(q, v.len * 2 + 3), *o = p;
    *o++ = '%';
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] == '\\' || v.p[i] == '%' || v.p[i] == '_')
            *o++ = '\\';
        *o++ = v.p[i];
    }
    *o++ = '%';
    *o = '\0';
    return str_make(p, (size_t)(o - p));
}

static void col(struct rq *q, const struct rfield *f)
{
    (void)buf_puts(&q->sql, "t.");
    (void)buf_puts(&q->sql, f->name);
}

/* Convert a literal to a db_arg for field f; -1 (error set) when the types
 * do not fit. Time literals become epoch ms (the SQL wraps them in ms_ts). */
static int literal_arg(struct rq *q, const struct rfield *f, const struct value *v, db_arg *out)
{
    str_t fname = str_c(f->name);
    switch (v->kind) {
    case V_ME:
        if (!(f->type == RF_TEXT || f->type == RF_REF))
            return rq_fail(q, 422, fname, "%s cannot be compared with @me", f->name);
        *out = q->me.len ? DBA_TEXT(q->me) : DBA_NULL;
        return 0;
    case V_NOW:
        if (f->type != RF_TIME)
            return rq_fail(q, 422, fname, "%s cannot be compared with @now", f->name);
        *out = DBA_INT(q->now_ms);
        return 0;
    case V_BOOL:
        if (f->type != RF_BOOL)
            return rq_fail(q, 422, fname, "%s is not a boolean field", f->name);
        *out = DBA_BOOL(v->b);
        return 0;
    case V_NULL: *out = DBA_NULL; return 0;
    case V_NUM:
    case V_STR: break;
    }
    switch (f->type) {
    case RF_INT:
    case RF_MONEY: {
        int64_t n;
        if (parse_i64(v->s, INT64_MIN, INT64_MAX, &n))
            return rq_fail(q, 422, fname, "%s must be compared with an integer", f->name);
        *out = DBA_INT(n);
        return 0;
    }
    case RF_BOOL:
        if (str_is(v->s, "true") || str_is(v->s, "1"))
            *out = DBA_BOOL(true);
        else if (str_is(v->s, "false") || str_is(v->s, "0"))
            *out = DBA_BOOL(false);
        else
            return rq_fail(q, 422, fname, "%s must be true or false", f->name);
        return 0;
    case RF_TIME: {
        int64_t ms;
        if (time_parse_rfc3339(v->s, &ms))
            return rq_fail(q, 422, fname, "%s must be an RFC 3339 date or time", f->name);
        *out = DBA_INT(ms);
        return 0;
    }
    case RF_ENUM:
        for (const char *const *e = f->values; e && *e; e++)
            if (str_eq(v->s, str_c(*e))) {
                *out = DBA_TEXT(v->s);
                return 0;
            }
        return rq_fail(q, 422, fname, "%s is not one of the allowed values", f->name);
    default:
        if (v->kind != V_STR)
            return rq_fail(q, 422, fname, "%s must be compared with a string", f->name);
        *out = DBA_TEXT(v->s);
        return 0;
    }
}

/* Emit one comparison "t.col op ?". */
static int compare(struct rq *q, const struct rfield *f, enum op op, const struct value *v)
{
    db_arg a;
    str_t fname = str_c(f->name);
    if (!(f->flags & RF_FILTER) && !q->all_fields)
        return rq_fail(q, 422, fname, "unknown filter field '%s'", f->name);
    if (op == OP_LIKE || op == OP_NLIKE) {
        if (!text_like(f->type))
            return rq_fail(q, 422, fname, "~ applies to text fields only, not %s", f->name);
        if (v->kind != V_STR)
            return rq_fail(q, 422, fname, "~ needs a string value");
        if (add_arg(q, DBA_TEXT(like_pattern(q, v->s))))
            return -1;
        const char *like = q->kind == DB_POSTGRES ? " ILIKE ? ESCAPE '\\'" : " LIKE ? ESCAPE '\\'";
        (void)buf_puts(&q->sql, op == OP_NLIKE ? "(" : "");
        if (op == OP_NLIKE) {
            col(q, f);
            (void)buf_puts(&q->sql, " IS NULL OR NOT (");
        }
        col(q, f);
        (void)buf_puts(&q->sql, like);
        (void)buf_puts(&q->sql, op == OP_NLIKE ? "))" : "");
        return 0;
    }
    if (v->kind == V_NULL) {
        if (op != OP_EQ && op != OP_NE)
            return rq_fail(q, 422, fname, "null can only be compared with = or !=");
        col(q, f);
        (void)buf_puts(&q->sql, op == OP_EQ ? " IS NULL" : " IS NOT NULL");
        return 0;
    }
    if ((f->type == RF_BOOL || f->type == RF_JSON || f->type == RF_STRLIST || f->type == RF_I18N) && op != OP_EQ &&
        op != OP_NE)
        return rq_fail(q, 422, fname, "%s can only be compared with = or !=", f->name);
    if (literal_arg(q, f, v, &a) || add_arg(q, a))
        return -1;
    const char *ph = f->type == RF_TIME ? "ms_ts(?)" : "?";
    if (a.type == DB_T_NULL) { /* @me when anonymous: never equal */
        (void)buf_puts(&q->sql, op == OP_NE ? "1=1" : "1=0");
        q->nargs--;
        return 0;
    }
    col(q, f);
    if (op == OP_NE) /* true for NULL columns too */
        (void)buf_printf(&q->sql, " %s %s", q->kind == DB_POSTGRES ? "IS DISTINCT FROM" : "IS NOT", ph);
    else
        (void)buf_printf(&q->sql, " %s %s", op_sql[op], ph);
    return 0;
}

/* ---- the expression lexer ---- */

enum tok { T_END, T_IDENT, T_STR, T_NUM, T_TRUE, T_FALSE, T_NULL, T_NOW, T_ME, T_OP, T_AND, T_OR, T_LP, T_RP, T_BAD };

struct lexer {
    struct rq *q;
    const char *start, *p, *end;
    enum tok t;
    str_t text;  /* T_IDENT, T_NUM: the source; T_STR: decoded */
    enum op op;  /* T_OP */
    int depth, terms;
};

static bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9') || c == '.'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static void lex_next(struct lexer *x)
{
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r'))
        x->p++;
    x->text = STR_NULL;
    if (x->p >= x->end) {
        x->t = T_END;
        return;
    }
    const char *s = x->p;
    char c = *s;
    size_t left = (size_t)(x->end - s);
#define TWO(a, b) (left >= 2 && s[0] == (a) && s[1] == (b))
    if (TWO('&', '&')) { x->t = T_AND; x->p += 2; return; }
    if (TWO('|', '|')) { x->t = T_OR; x->p += 2; return; }
    if (TWO('!', '=')) { x->t = T_OP; x->op = OP_NE; x->p += 2; return; }
    if (TWO('!', '~')) { x->t = T_OP; x->op = OP_NLIKE; x->p += 2; return; }
    if (TWO('>', '=')) { x->t = T_OP; x->op = OP_GE; x->p += 2; return; }
    if (TWO('<', '=')) { x->t = T_OP; x->op = OP_LE; x->p += 2; return; }
#undef TWO
    switch (c) {
    case '=': x->t = T_OP; x->op = OP_EQ; x->p++; return;
    case '>': x->t = T_OP; x->op = OP_GT; x->p++; return;
    case '<': x->t = T_OP; x->op = OP_LT; x->p++; return;
    case '~': x->t = T_OP; x->op = OP_LIKE; x->p++; return;
    case '(': x->t = T_LP; x->p++; return;
    case ')': x->t = T_RP; x->p++; return;
    default: break;
    }
    if (c == '\'' || c == '"') {
        /* decode into at most the source length */
        char *o = rq_alloc(x->q, left), *w = o;
        const char *p = s + 1;
        while (p < x->end && *p != c) {
            if (*p == '\\' && p + 1 < x->end)
                p++;
            *w++ = *p++;
        }
        if (p >= x->end) {
            x->t = T_BAD;
            return;
        }
        *w = '\0';
        x->text = str_make(o, (size_t)(w - o));
        x->t = T_STR;
        x->p = p + 1;
        return;
    }
    if (is_digit(c) || (c == '-' && left > 1 && is_digit(s[1]))) {
        const char *p = s + 1;
        while (p < x->end && is_digit(*p))
            p++;
        if (p < x->end && *p == '.') {
            p++;
            while (p < x->end && is_digit(*p))
                p++;
        }
        x->t = T_NUM;
        x->text = str_make(s, (size_t)(p - s));
        x->p = p;
        return;
    }
    if (c == '@' || is_ident_start(c)) {
        const char *p = s + 1;
        while (p < x->end && is_ident_char(*p))
            p++;
        str_t w = str_make(s, (size_t)(p - s));
        x->p = p;
        x->text = w;
        if (str_is(w, "true"))
            x->t = T_TRUE;
        else if (str_is(w, "false"))
            x->t = T_FALSE;
        else if (str_is(w, "null"))
            x->t = T_NULL;
        else if (str_is(w, "@now"))
            x->t = T_NOW;
        else if (str_is(w, "@me"))
            x->t = T_ME;
        else
            x->t = c == '@' ? T_BAD : T_IDENT;
        return;
    }
    x->t = T_BAD;
}

static int syntax(struct lexer *x, const char *what)
{
    return rq_fail(x->q, 400, STRLIT("filter"), "filter syntax error near offset %ld: %s", (long)(x->p - x->start),
                   what);
}

static int parse_or(struct lexer *x);

static int parse_cmp(struct lexer *x)
{
    struct rq *q = x->q;
    if (x->t != T_IDENT)
        return syntax(x, "expected a field name");
    str_t name = x->text;
    const struct rfield *f = resource_field(q->res, name);
    if (!f)
        return rq_fail(q, 422, name, "unknown filter field '%.*s'", STR_FMT(name));
    lex_next(x);
    if (x->t != T_OP)
        return syntax(x, "expected an operator (= != > >= < <= ~ !~)");
    enum op op = x->op;
    lex_next(x);
    struct value v = {0};
    switch (x->t) {
    case T_STR: v.kind = V_STR; v.s = x->text; break;
    case T_NUM: v.kind = V_NUM; v.s = x->text; break;
    case T_TRUE: v.kind = V_BOOL; v.b = true; break;
    case T_FALSE: v.kind = V_BOOL; v.b = false; break;
    case T_NULL: v.kind = V_NULL; break;
    case T_NOW: v.kind = V_NOW; break;
    case T_ME: v.kind = V_ME; break;
    default: return syntax(x, "expected a value");
    }
    if (++x->terms > EXPR_MAX_TERMS)
        return rq_fail(q, 422, STRLIT("filter"), "too many comparisons (max %d)", EXPR_MAX_TERMS);
    if (compare(q, f, op, &v))
        return -1;
    lex_next(x);
    return 0;
}

static int parse_primary(struct lexer *x)
{
    if (x->t == T_LP) {
        if (++x->depth > EXPR_MAX_DEPTH)
            return rq_fail(x->q, 400, STRLIT("filter"), "filter nests too deeply (max %d)", EXPR_MAX_DEPTH);
        lex_next(x);
        if (parse_or(x)) /* parse_or parenthesises what it emits */
            return -1;
        if (x->t != T_RP)
            return syntax(x, "expected )");
        x->depth--;
        lex_next(x);
        return 0;
    }
    return parse_cmp(x);
}

static int parse_and(struct lexer *x)
{
    if (parse_primary(x))
        return -1;
    while (x->t == T_AND) {
        lex_next(x);
        (void)buf_puts(&x->q->sql, " AND ");
        if (parse_primary(x))
            return -1;
    }
    return 0;
}

static int parse_or(struct lexer *x)
{
    (void)buf_putc(&x->q->sql, '(');
    if (parse_and(x))
        return -1;
    while (x->t == T_OR) {
        lex_next(x);
        (void)buf_puts(&x->q->sql, " OR ");
        if (parse_and(x))
            return -1;
    }
    (void)buf_putc(&x->q->sql, ')');
    return 0;
}

int rq_filter_expr(struct rq *q, str_t expr)
{
    if (expr.len > EXPR_MAX_LEN)
        return rq_fail(q, 422, STRLIT("filter"), "filter is longer than %d bytes", EXPR_MAX_LEN);
    size_t mark = q->sql.len;
    int nargs = q->nargs;
    struct lexer x = {.q = q, .start = expr.p, .p = expr.p, .end = expr.p + expr.len};
    lex_next(&x);
    if (x.t == T_END)
        return 0; /* an empty filter filters nothing */
    (void)buf_puts(&q->sql, " AND ");
    if (parse_or(&x))
        goto fail;
    if (x.t != T_END) {
        syntax(&x, "unexpected input after the expression");
        goto fail;
    }
    if (!buf_ok(&q->sql)) {
        rq_fail(q, 422, STRLIT("filter"), "filter is too complex");
        goto fail;
    }
    return 0;
fail:
    q->sql.len = mark; /* leave no half-written clause */
    if (q->sql.ptr)
        q->sql.ptr[mark] = '\0';
    q->nargs = nargs;
    return -1;
}

/* ---- bracket filters ---- */

int rq_filter_bracket(struct rq *q, str_t key, str_t value)
{
    str_t name = key, ops = STR_NULL;
    enum op op = OP_EQ;
    bool in = false;
    const char *lb = memchr(key.p, '[', key.len);
    if (lb) {
        name = str_make(key.p, (size_t)(lb - key.p));
        if (key.p[key.len - 1] != ']')
            return rq_fail(q, 400, key, "malformed filter parameter");
        ops = str_make(lb + 1, key.len - name.len - 2);
        if (str_is(ops, "ne"))
            op = OP_NE;
        else if (str_is(ops, "gt"))
            op = OP_GT;
        else if (str_is(ops, "gte"))
            op = OP_GE;
        else if (str_is(ops, "lt"))
            op = OP_LT;
        else if (str_is(ops, "lte"))
            op = OP_LE;
        else if (str_is(ops, "like"))
            op = OP_LIKE;
        else if (str_is(ops, "in"))
            in = true;
        else if (str_is(ops, "eq"))
            op = OP_EQ;
        else
            return rq_fail(q, 422, key, "unknown filter operator '%.*s' (eq ne gt gte lt lte in like)", STR_FMT(ops));
    }
    const struct rfield *f = resource_field(q->res, name);
    if (!f || !(f->flags & RF_FILTER))
        return rq_fail(q, 422, name, "unknown filter field '%.*s'", STR_FMT(name));
    if (!in) {
        struct value v = {.kind = V_STR, .s = value};
        size_t mark = q->sql.len;
        (void)buf_puts(&q->sql, " AND ");
        if (compare(q, f, op, &v)) {
            q->sql.len = mark;
            if (q->sql.ptr)
                q->sql.ptr[mark] = '\0';
            return -1;
        }
        return 0;
    }
    /* [in]=a,b,c */
    size_t mark = q->sql.len;
    int nargs = q->nargs, n = 0;
    if (f->type == RF_BOOL || f->type == RF_JSON || f->type == RF_STRLIST || f->type == RF_I18N)
        return rq_fail(q, 422, name, "[in] does not apply to %s", f->name);
    (void)buf_puts(&q->sql, " AND ");
    col(q, f);
    (void)buf_puts(&q->sql, " IN (");
    const char *p = value.p, *end = value.p + value.len;
    for (;;) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        str_t item = str_make(p, (size_t)((c ? c : end) - p));
        struct value v = {.kind = V_STR, .s = item};
        db_arg a;
        if (++n > IN_MAX_VALUES) {
            rq_fail(q, 422, name, "[in] takes at most %d values", IN_MAX_VALUES);
            goto fail;
        }
        if (literal_arg(q, f, &v, &a) || add_arg(q, a))
            goto fail;
        (void)buf_puts(&q->sql, n > 1 ? ", " : "");
        (void)buf_puts(&q->sql, f->type == RF_TIME ? "ms_ts(?)" : "?");
        if (!c)
            break;
        p = c + 1;
    }
    (void)buf_putc(&q->sql, ')');
    return 0;
fail:
    q->sql.len = mark;
    if (q->sql.ptr)
        q->sql.ptr[mark] = '\0';
    q->nargs = nargs;
    return -1;
}

/* ---- sort ---- */

int rq_sort(struct rq *q, str_t spec, struct buf *out)
{
    if (spec.len == 0 && q->res->default_sort)
        spec = str_c(q->res->default_sort);
    const char *p = spec.p, *end = spec.p + spec.len;
    int n = 0;
    bool desc_last = true;
    (void)buf_puts(out, " ORDER BY ");
    if (spec.len == 0) {
        (void)buf_puts(out, "t.created_at DESC, t.id DESC");
        return 0;
    }
    for (;;) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        str_t item = str_make(p, (size_t)((c ? c : end) - p)), name = item, dir = STR_NULL;
        const char *colon = memchr(item.p, ':', item.len);
        if (colon) {
            name = str_make(item.p, (size_t)(colon - item.p));
            dir = str_make(colon + 1, item.len - name.len - 1);
        }
        const struct rfield *f = resource_field(q->res, name);
        if (!f || !(f->flags & RF_SORT) || f->type == RF_I18N || f->type == RF_JSON || f->type == RF_STRLIST)
            return rq_fail(q, 422, STRLIT("sort"), "unknown sort field '%.*s'", STR_FMT(name));
        bool desc;
        if (!dir.p || str_is(dir, "asc"))
            desc = false;
        else if (str_is(dir, "desc"))
            desc = true;
        else
            return rq_fail(q, 422, STRLIT("sort"), "sort direction must be asc or desc, not '%.*s'", STR_FMT(dir));
        if (++n > SORT_MAX_KEYS)
            return rq_fail(q, 422, STRLIT("sort"), "at most %d sort keys", SORT_MAX_KEYS);
        (void)buf_printf(out, "%st.%s %s", n > 1 ? ", " : "", f->name, desc ? "DESC" : "ASC");
        if (q->kind == DB_POSTGRES) /* SQLite's NULL order: first ascending, last descending */
            (void)buf_puts(out, desc ? " NULLS LAST" : " NULLS FIRST");
        desc_last = desc;
        if (!c)
            break;
        p = c + 1;
    }
    (void)buf_printf(out, ", t.id %s", desc_last ? "DESC" : "ASC");
    return 0;
}
