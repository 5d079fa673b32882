/* uuid.c — UUIDv7, see uuid.h. */
#include "core/uuid.h"

#include <sodium.h>

#include "core/timeutil.h"

#include "core/banned.h"

/* Per-thread state: last timestamp and 12-bit sequence, and a pool of random
 * bytes refilled by one randombytes_buf() call per 64 ids (one getrandom
 * syscall per id was 6% of a request's CPU). Used bytes are wiped. */
static _Thread_local int64_t last_ms = -1;
static _Thread_local uint32_t seq;
static _Thread_local uint8_t pool[640];
static _Thread_local size_t pool_left;

static void take_random(uint8_t *out, size_t n)
{
    if (pool_left < n) {
        randombytes_buf(pool, sizeof(pool));
        pool_left = sizeof(pool);
    }
    uint8_t *p = pool + sizeof(pool) - pool_left;
    memcpy(out, p, n);
    sodium_memzero(p, n);
    pool_left -= n;
}

void uuid7_at(uint8_t out[16], int64_t now_ms)
{
    uint8_t rnd[10];
    take_random(rnd, sizeof(rnd));
    if (now_ms > last_ms) {
        last_ms = now_ms;
        seq = rnd[0] & 0x3FF; /* random start in the lower half leaves room to count */
    } else {
        /* same ms or clock went back: count; on overflow borrow the next ms */
        if (++seq > 0xFFF) {
            last_ms++;
            seq = 0;
        }
    }
    uint64_t ts = (uint64_t)last_ms;
    out[0] = (uint8_t)(ts >> 40);
    out[1] = (uint8_t)(ts >> 32);
    out[2] = (uint8_t)(ts >> 24);
    out[3] = (uint8_t)(ts >> 16);
    out[4] = (uint8_t)(ts >> 8);
    out[5] = (uint8_t)ts;
    out[6] = (uint8_t)(0x70 | ((seq >> 8) & 0x0F));
    out[7] = (uint8_t)(seq & 0xFF);
    out[8] = (uint8_t)(0x80 | (rnd[1] & 0x3F));
    memcpy(out + 9, rnd + 2, 7);
}

void uuid7(uint8_t out[16]) { uuid7_at(out, time_now_ms()); }

void uuid_format(const uint8_t u[16], char out[UUID_STR_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[u[i] >> 4];
        out[o++] = hex[u[i] & 15];
    }
    out[o] = '\0';
}

void uuid7_str(char out[UUID_STR_LEN + 1])
{
    uint8_t u[16];
    uuid7(u);
    uuid_format(u, out);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int uuid_parse(str_t s, uint8_t out[16])
{
    size_t j = 0;
    if (s.len != UUID_STR_LEN)
        return -1;
    for (size_t i = 0; i < s.len;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s.p[i] != '-')
                return -1;
            i++;
            continue;
        }
        int hi = hexval(s.p[i]), lo = hexval(s.p[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[j++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return 0;
}

bool uuid_valid(str_t s)
{
    uint8_t u[16];
    return uuid_parse(s, u) == 0;
}
