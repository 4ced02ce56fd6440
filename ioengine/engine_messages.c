/* engine_messages.c - the engine's lines on stderr (engine.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine.h"

/* --- messages ---------------------------------------------------------------
 * fio 3.33's log_info writes to fio's output stream, the one its JSON goes to
 * (stdout or --output=FILE), and log_err copies each line into an --output
 * file as well; in client/server mode both travel to the client, which
 * prints them into its own output stream. A notice, or an error while fio's
 * report is still to come, would break the JSON there. So the engine writes
 * its lines itself, to stderr, in one write(2) each (job processes leave
 * with _exit: nothing may wait in a stdio buffer). Only an error that stops
 * a job on a server goes through log_err, so that the client sees why. */
static void fio_xd_vsay(bool fatal, const char *fmt, va_list ap)
{
    char *line = NULL;
    int len = vasprintf(&line, fmt, ap);
    if (len < 0)
        return;
    if (fatal && is_backend)
        log_err("%s", line);
    else if (write(STDERR_FILENO, line, (size_t)len) < 0) {
        /* nowhere left to say it */
    }
    free(line);
}

/* s escaped for a message (one use per message: the buffer is per thread). */
const char *fio_xd_shown(const char *s)
{
    static __thread char buf[XD_ESCAPE_LEN];
    return xd_escape(s, buf, sizeof(buf));
}

/* A notice: the run goes on. */
void fio_xd_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fio_xd_vsay(false, fmt, ap);
    va_end(ap);
}

/* An error that fails a job or the run. */
void fio_xd_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fio_xd_vsay(true, fmt, ap);
    va_end(ap);
}
