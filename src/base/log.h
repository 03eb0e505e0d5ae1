/* Levelled logging: one line per event on stderr, written with a single write(2). */
#ifndef SSE_LOG_H
#define SSE_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/** A logger is plain configuration; it is shared read-only by every thread. */
typedef struct log {
    enum log_level level;
    int fd;
} log_t;

/** Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int log_level_parse(const char *s);

/**
 * Writes one line: "<ISO-8601 UTC time> <LEVEL> <message>". Values that come from
 * clients must go through log_clean() first so they cannot forge lines.
 */
void log_write(const log_t *lg, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * Copies s into out (size outsz) with control characters, quotes, backslashes and
 * spaces replaced by '?', truncated with "..." when too long. Returns out.
 */
const char *log_clean(const char *s, char *out, size_t outsz);

#define LOG_ENABLED(lg, lvl) ((lvl) >= (lg)->level)
#define log_debug(lg, ...)                                                                         \
    do {                                                                                           \
        if (LOG_ENABLED(lg, LOG_DEBUG)) log_write(lg, LOG_DEBUG, __VA_ARGS__);                     \
    } while (0)
#define log_info(lg, ...)                                                                          \
    do {                                                                                           \
        if (LOG_ENABLED(lg, LOG_INFO)) log_write(lg, LOG_INFO, __VA_ARGS__);                       \
    } while (0)
#define log_warn(lg, ...)                                                                          \
    do {                                                                                           \
        if (LOG_ENABLED(lg, LOG_WARN)) log_write(lg, LOG_WARN, __VA_ARGS__);                       \
    } while (0)
#define log_error(lg, ...)                                                                         \
    do {                                                                                           \
        if (LOG_ENABLED(lg, LOG_ERROR)) log_write(lg, LOG_ERROR, __VA_ARGS__);                     \
    } while (0)

#endif
