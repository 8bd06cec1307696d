/* cdp.h - a minimal Chrome DevTools Protocol client for the browser tests.
 *
 * It starts headless Chromium with --remote-debugging-pipe, which makes the
 * browser read protocol messages on its fd 3 and write replies and events
 * on its fd 4, each a JSON text ended by a NUL byte. No port is opened for
 * the protocol, so nothing but this process can drive the browser. All of
 * it runs on the calling (test) thread; every wait is bounded. */
#ifndef VG_CDP_H
#define VG_CDP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

/* Where Debian's chromium package puts the browser (build with
 * CPPFLAGS=-DCDP_CHROMIUM=\"/path\" to use another). */
#ifndef CDP_CHROMIUM
#define CDP_CHROMIUM "/usr/bin/chromium"
#endif

typedef struct {
    pid_t pid;          /* the browser, or 0 once reaped */
    int to_fd;          /* we write commands here (the browser's fd 3) */
    int from_fd;        /* we read replies and events here (its fd 4) */
    char *buf;          /* bytes read from from_fd, not yet a whole message */
    size_t len, cap;
    long next_id;       /* id of the next command */
    bool closed;        /* the browser closed its end of from_fd */
    char dir[64];       /* the throw-away profile (--user-data-dir) */
    char err[512];      /* why the last call failed */
} cdp_browser;

/* Starts `exe` headless with a fresh profile in a temporary directory.
 * The browser is killed (SIGKILL) if this process dies first, so a failed
 * test leaves no browser behind. Returns false with b->err set. Call it
 * before the test starts threads of its own: it forks. */
bool cdp_launch(cdp_browser *b, const char *exe);

/* Sends command `method` with parameters built by json_pack(fmt, ...)
 * (fmt NULL: no parameters), to the browser itself or, with `session`
 * non-NULL, to the page attached as that session. Waits up to `ms` for the
 * reply with its id, skipping events. Returns the reply's "result" as a
 * new reference (the caller decrefs it), or NULL with b->err set (protocol
 * error, browser gone, timeout). */
json_t *cdp_call(cdp_browser *b, const char *session, const char *method,
                 int ms, const char *fmt, ...);

/* Asks the browser to close (Browser.close), waits up to `ms` for it to
 * exit, kills it if it has not, reaps it, closes the pipes and removes the
 * profile. Returns true if it exited by itself. Safe to call twice. */
bool cdp_quit(cdp_browser *b, int ms);

#endif
