/*
 * banned.h — functions temel never calls. Include it LAST in every .c file,
 * after all system headers: the macros turn a call into a compile error
 * naming the reason. (Practice from git's banned.h.)
 *
 * Use instead: buf_* (core/buf.h) for string building, str_copy() for a
 * bounded copy, parse_i64()/parse_u64() for numbers, gmtime_r().
 */
#ifndef TEMEL_BANNED_H
#define TEMEL_BANNED_H

#define BANNED(func) sorry_##func##_is_banned_in_temel

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) BANNED(strncat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef atoi
#define atoi(x) BANNED(atoi)
#undef atol
#define atol(x) BANNED(atol)
#undef gets
#define gets(x) BANNED(gets)
#undef gmtime
#define gmtime(x) BANNED(gmtime)
#undef localtime
#define localtime(x) BANNED(localtime)

#endif
