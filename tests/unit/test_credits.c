/*
 * test_credits.c — unit tests for src/modules/credits (the ledger) through
 * the real module code on a migrated in-memory SQLite database: reserve →
 * confirm | refund (exactly once), insufficient credit changes nothing,
 * grant/purchase/adjust, a rolled-back transaction moves nothing, and
 * credits_verify recomputes every balance from the log (and catches a
 * tampered account). Calling the ledger outside a transaction is a BUG().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/timeutil.h"
#include "db/db.h"
#include "db/migrate.h"
#include "modules/credits/credits.h"

#include "core/banned.h"

#define FREE_MONTHLY 50 /* the free plan's grant on first use (credits.c) */
#define USER "0190a000-0000-7000-8000-0000000000a1"
#define GUEST "0190a000-0000-7000-8000-0000000000a2"

static struct db *g_db;

static int setup(void **state)
{
    struct buf err = BUF_INIT(BUF_MAX_SMALL), out = BUF_INIT(1u << 20);
    UNUSED(state);
    g_db = db_open("sqlite://:memory:", NULL, &err);
    if (!g_db)
        fail_msg("db_open: %s", buf_cstr(&err));
    if (migrate_up(g_db, 0, &out) != DB_OK)
        fail_msg("migrate_up: %s", db_errmsg(g_db));
    int64_t now = time_now_ms();
    assert_int_equal(db_exec(g_db,
                             "INSERT INTO users (id, email, role, created_at, updated_at) VALUES "
                             "(?, 'ledger@example.com', 'user', ms_ts(?), ms_ts(?)), (?, NULL, 'guest', ms_ts(?), ms_ts(?))",
                             DB_ARGS(DBA_CSTR(USER), DBA_INT(now), DBA_INT(now), DBA_CSTR(GUEST), DBA_INT(now),
                                     DBA_INT(now)),
                             NULL),
                     DB_OK);
    buf_free(&err);
    buf_free(&out);
    return 0;
}

static int teardown(void **state)
{
    UNUSED(state);
    db_close(g_db);
    return 0;
}

/* One ledger operation inside its own write transaction. */
enum op { OP_RESERVE, OP_CONFIRM, OP_REFUND, OP_ADD };
struct call {
    enum op op;
    const char *user, *type, *id;
    int64_t amount;
    char out_id[37];
    bool applied;
    int rc;
    bool rollback; /* fail the transaction after the call */
};

static int tx_call(struct db *db, void *arg)
{
    struct call *c = arg;
    switch (c->op) {
    case OP_RESERVE: c->rc = credits_reserve(db, str_c(c->user), c->amount, "test", c->out_id); break;
    case OP_CONFIRM: c->rc = credits_confirm(db, str_c(c->id), &c->applied); break;
    case OP_REFUND: c->rc = credits_refund(db, str_c(c->id), &c->applied); break;
    case OP_ADD: c->rc = credits_add(db, str_c(c->user), c->type, c->amount, "test", c->out_id); break;
    }
    if (c->rc < 0)
        return c->rc;
    return c->rollback ? DB_ECONSTRAINT : DB_OK;
}

static int run(struct call *c)
{
    int rc = db_tx(g_db, DB_TX_WRITE, tx_call, c);
    return rc < 0 ? rc : c->rc;
}

static struct credits_balance balance(const char *user)
{
    struct credits_balance b = {0};
    assert_int_equal(credits_get(g_db, str_c(user), &b), DB_OK);
    return b;
}

static void assert_balance(const char *user, int64_t bal, int64_t reserved)
{
    struct credits_balance b = balance(user);
    assert_int_equal(b.balance, bal);
    assert_int_equal(b.reserved, reserved);
    assert_int_equal(b.available, bal - reserved);
}

static void assert_ledger_ok(void)
{
    struct buf out = BUF_INIT(1u << 16);
    int rc = credits_verify(g_db, &out);
    if (rc != 0)
        fail_msg("credits_verify = %d: %s", rc, buf_cstr(&out));
    assert_non_null(strstr(buf_cstr(&out), "ledger ok"));
    buf_free(&out);
}

static void reserve_ok(const char *user, int64_t amount, char *id)
{
    struct call c = {.op = OP_RESERVE, .user = user, .amount = amount};
    assert_int_equal(run(&c), CREDITS_OK);
    memcpy(id, c.out_id, sizeof(c.out_id));
}

static bool settle(enum op op, const char *id)
{
    struct call c = {.op = op, .id = id};
    assert_int_equal(run(&c), CREDITS_OK);
    return c.applied;
}

static void t_reserve_confirm_once(void **state)
{
    char id[37];
    UNUSED(state);
    reserve_ok(USER, 5, id); /* first use: the account opens with the free grant */
    assert_balance(USER, FREE_MONTHLY, 5);
    assert_true(settle(OP_CONFIRM, id));
    assert_balance(USER, FREE_MONTHLY - 5, 0);
    assert_false(settle(OP_CONFIRM, id)); /* exactly once */
    assert_false(settle(OP_REFUND, id));  /* a confirmed reservation cannot be refunded */
    assert_balance(USER, FREE_MONTHLY - 5, 0);
    assert_ledger_ok();
}

static void t_reserve_refund_once(void **state)
{
    char id[37];
    UNUSED(state);
    struct credits_balance before = balance(USER);
    reserve_ok(USER, 7, id);
    assert_balance(USER, before.balance, before.reserved + 7);
    assert_true(settle(OP_REFUND, id));
    assert_balance(USER, before.balance, before.reserved);
    assert_false(settle(OP_REFUND, id));
    assert_false(settle(OP_CONFIRM, id));
    assert_balance(USER, before.balance, before.reserved);
    assert_ledger_ok();
}

static void t_insufficient_changes_nothing(void **state)
{
    UNUSED(state);
    struct credits_balance before = balance(USER);
    struct call c = {.op = OP_RESERVE, .user = USER, .amount = before.available + 1};
    assert_int_equal(run(&c), CREDITS_INSUFFICIENT);
    assert_balance(USER, before.balance, before.reserved);
    /* the whole available amount can be held, then nothing more */
    char id[37];
    reserve_ok(USER, before.available, id);
    c = (struct call){.op = OP_RESERVE, .user = USER, .amount = 1};
    assert_int_equal(run(&c), CREDITS_INSUFFICIENT);
    assert_true(settle(OP_REFUND, id));
    /* a guest gets no free grant */
    c = (struct call){.op = OP_RESERVE, .user = GUEST, .amount = 1};
    assert_int_equal(run(&c), CREDITS_INSUFFICIENT);
    assert_balance(GUEST, 0, 0);
    assert_ledger_ok();
}

static void t_unknown_reservation(void **state)
{
    UNUSED(state);
    struct call c = {.op = OP_CONFIRM, .id = "0190a000-0000-7000-8000-00000000dead"};
    assert_int_equal(run(&c), CREDITS_NOT_FOUND);
    assert_false(c.applied);
    c = (struct call){.op = OP_REFUND, .id = "not a uuid but a very long string that is longer than any id in the log"};
    assert_int_equal(run(&c), CREDITS_NOT_FOUND);
}

static void t_add_and_adjust(void **state)
{
    UNUSED(state);
    struct credits_balance b = balance(USER);
    struct call c = {.op = OP_ADD, .user = USER, .type = "grant", .amount = 10};
    assert_int_equal(run(&c), CREDITS_OK);
    c = (struct call){.op = OP_ADD, .user = USER, .type = "purchase", .amount = 100};
    assert_int_equal(run(&c), CREDITS_OK);
    c = (struct call){.op = OP_ADD, .user = USER, .type = "adjust", .amount = -30};
    assert_int_equal(run(&c), CREDITS_OK);
    assert_balance(USER, b.balance + 80, b.reserved);
    /* an adjust may not take available below zero */
    c = (struct call){.op = OP_ADD, .user = USER, .type = "adjust", .amount = -(b.available + 81)};
    assert_int_equal(run(&c), CREDITS_INSUFFICIENT);
    assert_balance(USER, b.balance + 80, b.reserved);
    assert_ledger_ok();
}

static void t_rollback_moves_nothing(void **state)
{
    UNUSED(state);
    struct credits_balance b = balance(USER);
    struct call c = {.op = OP_RESERVE, .user = USER, .amount = 3, .rollback = true};
    assert_true(db_tx(g_db, DB_TX_WRITE, tx_call, &c) < 0);
    assert_balance(USER, b.balance, b.reserved);
    c = (struct call){.op = OP_ADD, .user = USER, .type = "purchase", .amount = 9, .rollback = true};
    assert_true(db_tx(g_db, DB_TX_WRITE, tx_call, &c) < 0);
    assert_balance(USER, b.balance, b.reserved);
    assert_ledger_ok();
}

static void t_verify_catches_tampering(void **state)
{
    struct buf out = BUF_INIT(1u << 16);
    UNUSED(state);
    assert_ledger_ok();
    assert_int_equal(db_exec(g_db, "UPDATE credit_accounts SET balance = balance + 1 WHERE user_id = ?",
                             DB_ARGS(DBA_CSTR(USER)), NULL),
                     DB_OK);
    assert_int_equal(credits_verify(g_db, &out), 1);
    assert_non_null(strstr(buf_cstr(&out), "LEDGER BROKEN"));
    assert_non_null(strstr(buf_cstr(&out), USER));
    assert_int_equal(db_exec(g_db, "UPDATE credit_accounts SET balance = balance - 1 WHERE user_id = ?",
                             DB_ARGS(DBA_CSTR(USER)), NULL),
                     DB_OK);
    assert_ledger_ok();
    buf_free(&out);
}

static void t_price(void **state)
{
    UNUSED(state);
    assert_int_equal(credits_price("chat"), 1);
    assert_int_equal(credits_price("image"), 5);
    assert_int_equal(credits_price("nope"), -1);
}

/* Moving credit outside a transaction is a programmer error (abort). */
static void t_outside_tx_is_bug(void **state)
{
    int status = 0;
    UNUSED(state);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char id[37];
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        (void)!credits_reserve(g_db, str_c(USER), 1, "x", id);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    /* in order: each test starts from the state the previous one left */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_reserve_confirm_once),     cmocka_unit_test(t_reserve_refund_once),
        cmocka_unit_test(t_insufficient_changes_nothing), cmocka_unit_test(t_unknown_reservation),
        cmocka_unit_test(t_add_and_adjust),           cmocka_unit_test(t_rollback_moves_nothing),
        cmocka_unit_test(t_verify_catches_tampering), cmocka_unit_test(t_price),
        cmocka_unit_test(t_outside_tx_is_bug),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
