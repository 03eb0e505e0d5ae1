/* Levelled logging: one line per event, safe to call from any thread. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0) return i;
    if (strcasecmp(s, "warning") == 0) return LOG_WARN;
    return -1;
}

void log_write(const log_t *lg, enum log_level level, const char *fmt, ...)
{
    char line[1024];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03dZ %s ", (int)(tv.tv_usec / 1000),
                          level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0) m = 0;
    n += (size_t)m;
    if (n > sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    /* One write per line keeps lines whole when several threads log at once. */
    ssize_t w = write(lg->fd, line, n);
    (void)w;
}

const char *log_clean(const char *s, char *out, size_t outsz)
{
    size_t i = 0;
    if (!s) s = "";
    for (; *s && i + 1 < outsz; s++) {
        unsigned char c = (unsigned char)*s;
        out[i++] = (c < 0x21 || c == 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    if (*s && outsz > 4) memcpy(out + outsz - 4, "...", 3), i = outsz - 1;
    out[i] = '\0';
    return out;
}
