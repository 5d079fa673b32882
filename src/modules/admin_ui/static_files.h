/*
 * static_files.h — files embedded into the binary at build time by
 * tools/embed_static.py (src/modules/admin_ui/meson.build): the admin
 * dashboard's HTML, CSS and JavaScript. No file is read at run time.
 */
#ifndef TEMEL_ADMIN_UI_STATIC_FILES_H
#define TEMEL_ADMIN_UI_STATIC_FILES_H

#include <stddef.h>

struct static_file {
    const char *name;         /* "app.js" */
    const char *content_type; /* by extension */
    const unsigned char *data;
    size_t len;
    const char *etag;         /* "\"<sha-256 prefix>\"" */
};

extern const struct static_file admin_ui_files[];
extern const size_t admin_ui_files_count;

#endif
