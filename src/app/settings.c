/* The server's settings as every verb reads them: one path, so `ssehub check` judges what the server would. */
#include "settings.h"

#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "users.h"

/* An SSE_ name that is no setting (a typing mistake, most likely): one warning line. */
static void warn_setting(void *arg, const char *line)
{
    log_warn((const log_t *)arg, "%s", line);
}

int settings_load(const char *env_path, int optional, config_t *cfg, envfile_t *keep, log_t *lg,
                  char err[SSE_ERR_LEN])
{
    memset(cfg, 0, sizeof *cfg);
    envfile_t ef;
    if (envfile_load(&ef, env_path, optional, err)) return SSE_EINVAL;
    int rc = config_load(cfg, &ef, err);
    if (!rc) {
        lg->level = (enum log_level)log_level_parse(cfg->log_level);
        config_warn_unknown(&ef, environ, warn_setting, lg);
        rc = auth_load_public_key(cfg, err);
    }
    if (!rc) rc = users_load(cfg, err);
    if (rc) config_free(cfg);
    if (rc || !keep) envfile_free(&ef);
    else *keep = ef;
    return rc ? SSE_EINVAL : SSE_OK;
}
