/* Accounts with argon2id hashes (SSE_USERS_FILE), the `ssehub passwd` command, password checks. */
#ifndef SSE_USERS_H
#define SSE_USERS_H

#include <stdbool.h>

#include "common.h"
#include "config.h"

/** Room for an argon2id string from libsodium (crypto_pwhash_STRBYTES). */
#define USERS_HASH_LEN 128

/** The checker pool main() starts for hashed accounts: threads, and logins that may wait. */
#define USERS_CHECK_THREADS 2
#define USERS_CHECK_QUEUE 256
/** Checks one client address (its key) may have queued or running: a quarter of the queue. */
#define USERS_CHECK_PER_ADDRESS (USERS_CHECK_QUEUE / 4)

/** Longest account name (the token's "username" and identity_t keep 127 bytes). */
#define USERS_MAX_NAME 127

/**
 * Parses users-file text and appends its accounts to cfg->accounts. Lines are
 * "username:role:hash" (role subscriber, publisher or admin; hash an argon2id
 * string); blank lines and lines starting with '#' are skipped. A name may not
 * repeat one already in cfg. Returns 0, or SSE_EINVAL with "line N: why" in err
 * (cfg keeps the accounts added before the bad line; config_free() frees them).
 */
int users_parse(config_t *cfg, const char *text, char err[SSE_ERR_LEN]);

/**
 * Reads cfg->users_file (nothing to do when it is "") with users_parse(). On failure
 * returns SSE_EINVAL with one line naming SSE_USERS_FILE (and the line) in err.
 * Also refuses a configuration left without any account.
 */
int users_load(config_t *cfg, char err[SSE_ERR_LEN]);

/** True when some account has a hash (the checks then need argon2id). */
bool users_any_hashed(const config_t *cfg);

/** Hashes pass into out with argon2id (interactive limits). Returns 0 or SSE_ERR. */
int users_hash(const char *pass, char out[USERS_HASH_LEN]);

/** A new argon2id hash of a random password, checked when a name is unknown. NULL on failure. */
char *users_dummy_hash(void);

/**
 * Checks a login against every account: the SSE_* ones as auth_check_password()
 * does, and exactly one argon2id verification, against the named account's hash
 * or dummy_hash when no hashed account has that name, so the time taken does not
 * tell whether a name exists. Slow (tens of ms): never call it on an event loop.
 * Returns the account or NULL.
 */
const account_t *users_check_password(const config_t *cfg, const char *dummy_hash,
                                      const char *user, const char *pass);

/**
 * `ssehub passwd [--user NAME --role ROLE]`: reads one password line from stdin
 * (without echo on a terminal) and prints its argon2id hash, or with --user and
 * --role the whole users-file line. argv[0] is "passwd". Returns the exit status:
 * 0, 1 on failure, 2 on bad arguments.
 */
int users_passwd_main(int argc, char **argv);

#endif
