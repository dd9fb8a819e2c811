/* The web console's files, embedded at build time (cmake/embed_console.cmake). */
#ifndef DSF_CONSOLE_ASSETS_H
#define DSF_CONSOLE_ASSETS_H

#include <stddef.h>

struct console_asset {
    const char *path; /* below control/console/: "index.html", "js/app.js" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
    const char *etag; /* strong, quoted */
};

extern const struct console_asset console_assets[];
extern const size_t console_nassets;

#endif
