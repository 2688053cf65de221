/*
 * export-context.c - the serving side's context, on its own so that the
 * files which read it (handle.c, serve.c) stand below export.c, which
 * sets it (export_init) and dispatches to them, and no circle forms.
 */
#include "export-int.h"

/* What the serving side was given; set before the first request. */
struct export_ctx export_context;
