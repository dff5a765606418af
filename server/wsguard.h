/* Two checks of RFC 6455 that libwebsockets 4.1.6 cannot be asked for, made
 * on the bytes it reads from a plain (not TLS) WebSocket connection, before
 * it parses them: a client frame that is not masked (5.1: close 1002), and a
 * burst of pings, of which lws answers only the first it reads at a time and
 * drops the others (5.5.2: the most recent must be answered).
 *
 * How: lws reads a connection's socket with recv(), which this file defines
 * and so interposes (the executable's definition wins over libc's for the
 * lws shared library). For a registered socket it follows the frames:
 * - the header of an unmasked frame gets its RSV2 bit set, which lws then
 *   refuses the way it refuses any reserved bit: close 1002, and nothing of
 *   that frame or after it reaches the protocol;
 * - of the pings that one read holds, all but the last become pongs (which a
 *   client may send unasked, and lws hands to LWS_CALLBACK_RECEIVE_PONG), so
 *   the one lws answers is the newest (RFC 6455 5.5.3 allows answering only
 *   the most recent);
 * - a read that ends inside a frame header or a control frame returns the
 *   bytes before it and keeps those for the next read (a control frame is at
 *   most 131 bytes; more bytes must come for it anyway), so that every check
 *   above sees a whole header and each ping lies within one read.
 * Any other socket, and a TLS one (lws reads it through OpenSSL), is passed
 * through untouched. */
#ifndef REFINE_WSGUARD_H
#define REFINE_WSGUARD_H

/* From LWS_CALLBACK_ESTABLISHED: the socket fd now carries WebSocket frames. */
void wsguard_start(int fd);
/* From LWS_CALLBACK_CLOSED (before the fd can be reused): forget it. */
void wsguard_stop(int fd);

#endif
