/* The server's settings as every verb reads them: .env, the table's checks, the key and accounts files. */
#ifndef SSE_SETTINGS_H
#define SSE_SETTINGS_H

#include "config.h"
#include "log.h"

/**
 * Loads the settings exactly as the server starts with them: env_path (a missing file is
 * fine when optional is set), then config_load(), a warning line on lg for each unknown
 * SSE_ name (lg->level is set from SSE_LOG_LEVEL first), SSE_JWT_PUBLIC_KEY and
 * SSE_USERS_FILE. With keep non-NULL the parsed file is handed to the caller (free it with
 * envfile_free()), else it is freed. Returns 0, or SSE_EINVAL with one line naming the
 * variable or the file in err; cfg then holds nothing to free.
 */
int settings_load(const char *env_path, int optional, config_t *cfg, envfile_t *keep, log_t *lg,
                  char err[SSE_ERR_LEN]);

#endif
