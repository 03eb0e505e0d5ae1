/* Fuzzes envfile_parse() on the input as .env text, then checks and frees the result. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size); /* stops at a NUL, as a C string would */
    envfile_t ef;
    char err[SSE_ERR_LEN] = "";
    int rc = envfile_parse(&ef, text, err);
    if (rc == SSE_OK) {
        for (int i = 0; i < ef.count; i++) {
            const char *n = ef.names[i];
            FUZZ_CHECK(*n != '\0' && ef.values[i] != NULL);
            for (const char *p = n; *p; p++) FUZZ_CHECK(isalnum((unsigned char)*p) || *p == '_');
            for (int j = 0; j < i; j++) FUZZ_CHECK(strcmp(ef.names[j], n) != 0);
            FUZZ_CHECK(envfile_get(&ef, n) == ef.values[i]);
        }
    } else {
        FUZZ_CHECK(rc == SSE_EINVAL && strncmp(err, "line ", 5) == 0);
        FUZZ_CHECK(ef.count == 0 && ef.names == NULL && ef.values == NULL);
    }
    envfile_free(&ef);
    free(text);
    return 0;
}
