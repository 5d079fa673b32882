/* timeutil.c — see timeutil.h. */
#include "core/timeutil.h"

#include <time.h>

#include "core/banned.h"

int64_t time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

void time_format_rfc3339(int64_t epoch_ms, char out[TIME_RFC3339_LEN + 1])
{
    struct tm tm;
    int64_t ms = epoch_ms % 1000;
    time_t secs = (time_t)(epoch_ms / 1000);
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    gmtime_r(&secs, &tm);
    int year = tm.tm_year + 1900;
    if (year < 0 || year > 9999)
        year = year < 0 ? 0 : 9999;
    put2(out, year / 100);
    put2(out + 2, year % 100);
    out[4] = '-';
    put2(out + 5, tm.tm_mon + 1);
    out[7] = '-';
    put2(out + 8, tm.tm_mday);
    out[10] = 'T';
    put2(out + 11, tm.tm_hour);
    out[13] = ':';
    put2(out + 14, tm.tm_min);
    out[16] = ':';
    put2(out + 17, tm.tm_sec);
    out[19] = '.';
    out[20] = (char)('0' + ms / 100);
    put2(out + 21, (int)(ms % 100));
    out[23] = 'Z';
    out[24] = '\0';
}

static int digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

/* days since 1970-01-01 of a civil date (Howard Hinnant's algorithm) */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int time_parse_rfc3339(str_t s, int64_t *epoch_ms)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, off = 0;
    const char *p = s.p;
    size_t i;
    if (s.len < 10 || digits(p, 4, &y) || p[4] != '-' || digits(p + 5, 2, &mo) || p[7] != '-' ||
        digits(p + 8, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return -1;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return -1;
    i = 10;
    if (i < s.len) {
        if ((p[i] != 'T' && p[i] != 't' && p[i] != ' ') || s.len < i + 9)
            return -1;
        if (digits(p + i + 1, 2, &h) || p[i + 3] != ':' || digits(p + i + 4, 2, &mi) || p[i + 6] != ':' ||
            digits(p + i + 7, 2, &sec))
            return -1;
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
        i += 9;
        if (i < s.len && p[i] == '.') {
            int n = 0, scale = 100;
            i++;
            while (i < s.len && p[i] >= '0' && p[i] <= '9') {
                if (n < 3)
                    ms += (p[i] - '0') * scale;
                scale /= 10;
                n++;
                i++;
            }
            if (n == 0 || n > 9)
                return -1;
        }
        if (i >= s.len)
            return -1;
        if ((p[i] == 'Z' || p[i] == 'z') && i + 1 == s.len) {
            off = 0;
        } else if ((p[i] == '+' || p[i] == '-') && i + 6 == s.len && p[i + 3] == ':') {
            int oh, om;
            if (digits(p + i + 1, 2, &oh) || digits(p + i + 4, 2, &om) || oh > 23 || om > 59)
                return -1;
            off = (oh * 60 + om) * (p[i] == '+' ? 1 : -1);
        } else {
            return -1;
        }
    }
    if (sec == 60)
        sec = 59;
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - (int64_t)off * 60;
    *epoch_ms = t * 1000 + ms;
    return 0;
}
