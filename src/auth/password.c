/* password.c — see password.h. */
#include "auth/password.h"

#include <pthread.h>
#include <sodium.h>

#include "core/json.h"
#include "core/workpool.h"

#include "core/banned.h"

/* argon2id runs on the worker pool (core/workpool.h): tens of ms of CPU
 * never hold an event loop. Off the loops work_run runs it inline. */
struct pw_job {
    str_t pw;
    const char *hash;
    char *out;
    int rc;
};

static void do_hash(void *arg)
{
    struct pw_job *j = arg;
    j->rc = crypto_pwhash_str_alg(j->out, j->pw.p, j->pw.len, PASSWORD_OPSLIMIT, PASSWORD_MEMLIMIT,
                                  crypto_pwhash_ALG_ARGON2ID13) == 0
                ? 0
                : -1;
}

static void do_verify(void *arg)
{
    struct pw_job *j = arg;
    j->rc = crypto_pwhash_str_verify(j->hash, j->pw.p, j->pw.len);
}

int password_hash(str_t pw, char out[PASSWORD_HASH_MAX])
{
    struct pw_job j = {.pw = pw, .out = out};
    work_run(do_hash, &j);
    return j.rc;
}

bool password_verify(const char *hash, str_t pw)
{
    struct pw_job j = {.pw = pw, .hash = hash};
    if (!hash || !*hash)
        return false;
    work_run(do_verify, &j);
    return j.rc == 0;
}

bool password_needs_rehash(const char *hash)
{
    return crypto_pwhash_str_needs_rehash(hash, PASSWORD_OPSLIMIT, PASSWORD_MEMLIMIT) != 0;
}

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[PASSWORD_HASH_MAX];

static void make_dummy(void)
{
    if (password_hash(STRLIT("temel-dummy-password-for-timing"), dummy_hash))
        FATAL("cannot compute the dummy password hash");
}

void password_burn(str_t pw)
{
    pthread_once(&dummy_once, make_dummy);
    (void)password_verify(dummy_hash, pw);
}

/* The most common passwords of 10+ characters (lower-case), from public breach
 * frequency lists; a short list by design (API.md: "a small common-password list"). */
static const char *const common[] = {
    "1234567890", "12345678910", "123456789a", "1234567890a", "0123456789", "1111111111", "0000000000",
    "1q2w3e4r5t", "1q2w3e4r5t6y", "qwertyuiop", "qwertyuiop1", "qwerty1234", "qwerty123456", "1qaz2wsx3edc",
    "password12", "password123", "password1234", "passw0rd123", "iloveyou12", "iloveyou123", "abcdefghij",
    "abcd123456", "abc1234567", "asdfghjkl1", "asdfghjkl;", "zxcvbnm123", "princess12", "football12",
    "baseball12", "welcome123", "welcome1234", "sunshine12", "superman12", "michael123", "letmein123",
    "trustno123", "dragon1234", "monkey1234", "starwars12", "whatever12", "computer12", "internet12",
    "qazwsxedc1", "q1w2e3r4t5", "a1b2c3d4e5", "9876543210", "5555555555", "7777777777", "1234512345",
    "1122334455", "aaaaaaaaaa", "administrator", "adminadmin", "admin12345", "changeme123", "default123",
    "mustafa123", "galatasaray", "fenerbahce", "besiktas1903", "fenerbahce1907", "galatasaray1905",
    "sifre12345", "parola1234", "turkiye123", "istanbul34", "ankara1234", "haslo12345", "zaq12wsxcde",
    "qwertyuiopasdfghjkl", "password!1", "password01", "passwordpassword", "1234567890qwerty",
};

const char *password_policy(str_t pw, str_t email)
{
    size_t n = utf8_len(pw.p, pw.len);
    char lower[PASSWORD_MAX_LEN * 4 + 1];
    if (n < PASSWORD_MIN_LEN)
        return "must be at least 10 characters";
    if (n > PASSWORD_MAX_LEN || pw.len >= sizeof(lower))
        return "must be at most 256 characters";
    if (!utf8_valid(pw))
        return "must be valid UTF-8";
    for (size_t i = 0; i < pw.len; i++) {
        char c = pw.p[i];
        lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    lower[pw.len] = '\0';
    if (email.len && str_ieq(pw, email))
        return "must not be the email address";
    if (email.len) {
        const char *at = memchr(email.p, '@', email.len);
        size_t local = at ? (size_t)(at - email.p) : email.len;
        if (local >= 4 && str_ieq(pw, str_make(email.p, local)))
            return "must not be the email address";
    }
    for (size_t i = 0; i < ARRAY_LEN(common); i++)
        if (!strcmp(lower, common[i]))
            return "is too common";
    bool all_same = true;
    for (size_t i = 1; i < pw.len; i++)
        all_same &= pw.p[i] == pw.p[0];
    if (all_same)
        return "is too common";
    return NULL;
}
