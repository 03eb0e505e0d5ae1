/* Files from web/ built into the binary, so a fresh install serves them with no paths to set. */
#ifndef SSE_ASSETS_H
#define SSE_ASSETS_H

#include "api.h"

/** The built-in files, ending with an entry whose path is NULL (generated at build time). */
extern const asset_t ssehub_assets[];

#endif
