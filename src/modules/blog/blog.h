/*
 * blog.h — the blog (API.md §9, seed 001): categories and posts written by
 * staff, comments written by users and shown to others only after staff
 * approve them. The descriptors are public so other modules can name them.
 */
#ifndef TEMEL_BLOG_H
#define TEMEL_BLOG_H

#include "core/module.h"
#include "resource/resource.h"

extern const struct resource blog_categories, blog_posts, blog_comments;
extern const struct module blog_module;

#endif
