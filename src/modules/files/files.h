/*
 * files.h — the files module (API.md §7): uploads, downloads, presigned
 * links, image variants, generated documents. Storage is src/storage.
 */
#ifndef TEMEL_FILES_H
#define TEMEL_FILES_H

#include "core/module.h"

extern const struct module files_module;

#endif
