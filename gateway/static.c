/*
 * static.c: the browser app's files from the web root (EJ_WEB_ROOT).
 *
 * "/" and extension-less paths that name no file get index.html (the app routes on the client).
 * Paths with a "." or ".." segment, a hidden segment, a backslash or a control character are
 * refused (MHD has already decoded %xx escapes, so encoded traversal is caught too), and every
 * file is opened relative to the root's directory descriptor. Responses stream the file
 * (MHD_create_response_from_fd) with a Content-Type by extension, an ETag from size and mtime
 * (If-None-Match gives 304), and Cache-Control: no-cache on every file, so a browser revalidates
 * each time (a cheap 304) and never runs a stale script after a deploy.
 * Read-only after open; thread-safe.
 */
#include "static.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"

struct gw_static {
        int dirfd; /* -1 when the root is missing */
};

static const struct {
        const char *ext;
        const char *type;
} mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"json", "application/json; charset=utf-8"},
    {"woff2", "font/woff2"},
    {"txt", "text/plain; charset=utf-8"},
    {"map", "application/json; charset=utf-8"},
};

static const char *mime_of(const char *name)
{
        const char *slash = strrchr(name, '/');
        const char *dot = strrchr(slash ? slash : name, '.');

        if (dot)
                for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++)
                        if (strcasecmp(dot + 1, mime_types[i].ext) == 0)
                                return mime_types[i].type;
        return "application/octet-stream";
}

/* True when every segment of `path` (which starts with '/') is a plain name. */
static bool path_safe(const char *path)
{
        const char *seg = path + 1;

        if (path[0] != '/')
                return false;
        for (const char *c = path; *c; c++)
                if ((unsigned char)*c < 0x20 || *c == '\\' || *c == 0x7f)
                        return false;
        while (*seg) {
                const char *end = strchr(seg, '/');
                size_t n = end ? (size_t)(end - seg) : strlen(seg);

                /* Empty segments ("//") and dot-files, ".", ".." all start with '.' or are
                 * empty; only the final segment may be empty ("/dir/"). */
                if ((n == 0 && end) || (n > 0 && seg[0] == '.'))
                        return false;
                if (!end)
                        break;
                seg = end + 1;
        }
        return true;
}

/* True when the last segment has no extension (an app route such as /articles/12). */
static bool is_app_route(const char *path)
{
        const char *slash = strrchr(path, '/');

        return strchr(slash ? slash : path, '.') == NULL;
}

struct gw_static *gw_static_open(const char *root)
{
        struct gw_static *st = xcalloc(1, sizeof(*st));

        st->dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (st->dirfd < 0)
                ej_warn(NULL, "web root %s cannot be opened; static files will be 404", root);
        return st;
}

void gw_static_close(struct gw_static *st)
{
        if (st == NULL)
                return;
        if (st->dirfd >= 0)
                close(st->dirfd);
        free(st);
}

/* Opens `rel` under the root as a regular file; -1 otherwise. */
static int open_regular(struct gw_static *st, const char *rel, struct stat *sb)
{
        int fd = openat(st->dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

        if (fd < 0)
                return -1;
        if (fstat(fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
                close(fd);
                return -1;
        }
        return fd;
}

static bool etag_matches(const char *if_none_match, const char *etag)
{
        /* A list of tags, possibly weak ("W/"); a substring test of the quoted tag is enough
         * because our tags are quoted and cannot contain commas. */
        return if_none_match && (strcmp(if_none_match, "*") == 0 || strstr(if_none_match, etag));
}

struct MHD_Response *gw_static_response(struct gw_static *st, const char *path,
                                        const char *if_none_match, unsigned *status)
{
        struct MHD_Response *resp = NULL;
        struct stat sb;
        const char *rel = path + 1;
        const char *name;
        char etag[64];
        int fd = -1;

        *status = 404;
        if (st->dirfd < 0 || !path_safe(path))
                return NULL;
        if (rel[0] == '\0' || rel[strlen(rel) - 1] == '/')
                rel = "index.html";
        fd = open_regular(st, rel, &sb);
        if (fd < 0 && is_app_route(path)) {
                rel = "index.html";
                fd = open_regular(st, rel, &sb);
        }
        if (fd < 0)
                return NULL;
        name = rel;
        snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long)sb.st_size,
                 (unsigned long long)sb.st_mtim.tv_sec * 1000000000ull +
                     (unsigned long long)sb.st_mtim.tv_nsec);
        if (etag_matches(if_none_match, etag)) {
                close(fd);
                resp = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "",
                                                       MHD_RESPMEM_PERSISTENT);
                *status = 304;
        } else {
                /* MHD owns fd once the response exists. */
                resp = MHD_create_response_from_fd((size_t)sb.st_size, fd);
                if (resp == NULL) {
                        close(fd);
                        return NULL;
                }
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, mime_of(name));
                *status = 200;
        }
        if (resp == NULL)
                return NULL;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        return resp;
}
