/*
 * nullfs --stream (stream.c): nullfs's file read from one HTTP GET of an
 * object, in order. Every function but stream_open() runs on the FUSE
 * session's one thread.
 */
#ifndef COFAULT_BENCH_STREAM_H
#define COFAULT_BENCH_STREAM_H

#include <fuse_lowlevel.h>
#include <stdint.h>
#include <sys/types.h>

/* Send the GET for URL ("http://A.B.C.D:PORT/PATH", plain HTTP only) and
 * take the answer's headers; *size is the body's length. With splice_it,
 * reads are spliced from the socket. 0, -EINVAL (URL), -EPROTO (not a 200
 * with a Content-Length) or -errno. */
int stream_open(const char *url, int splice_it, uint64_t *size);

/* From the session's init: what the chosen way of replying needs. */
void stream_want(struct fuse_conn_info *conn);

/* Answer a FUSE read: the next size bytes of the body, which must start at
 * off (anything else is EIO, as is a body that ends early). */
void stream_read(fuse_req_t req, size_t size, off_t off);

/* Close the connection and free what stream_open() took. */
void stream_close(void);

#endif
