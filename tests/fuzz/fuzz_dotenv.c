/* libFuzzer target: the .env parser (config_dotenv_line, one line at a time,
 * as config_load_dotenv feeds it). Checks invariants, not just crashes: a
 * pair's key is non-empty [A-Za-z0-9_] and both key and value lie inside the
 * line buffer; the value starts with a space or tab only when it was quoted. */
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p); /* getline keeps the newline */
        char *line = malloc(n + 1), *key = NULL, *val = NULL;
        if (!line)
            abort();
        memcpy(line, p, n);
        line[n] = '\0';
        int rc = config_dotenv_line(line, n, &key, &val);
        if (rc < -2 || rc > 1)
            abort();
        if (rc == 1) {
            if (!key || !val || key < line || key >= line + n || val < line || val > line + n || !*key)
                abort();
            for (const char *k = key; *k; k++)
                if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_'))
                    abort();
            /* leading blanks survive only inside quotes */
            if ((*val == ' ' || *val == '\t') && !(val > line && (val[-1] == '"' || val[-1] == '\'')))
                abort();
        }
        free(line);
        p += n;
    }
    return 0;
}
