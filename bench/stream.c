/*
 * nullfs --stream: the bytes of nullfs's file come from one plain HTTP GET
 * of a whole object, opened at mount and read in order as the file is read.
 * Each FUSE read is one recv() into a buffer and one reply (or, with
 * --splice, the body moved from the socket into a pipe and spliced into
 * FUSE, no copy by the process). No cache, no checksum, no prefetch beyond
 * the socket's own buffer, one reader from the start: what a FUSE server
 * that takes a cold file from this origin can do at all on this machine.
 * Single-threaded: replies must leave in the socket's order.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "stream.h"

/* Headers larger than this are refused: nginx sends about 250 bytes. */
#define STREAM_HEAD_MAX 8192
/* The pipe --splice moves each read through. It fills by buffers, not
 * bytes (a socket's small segments take one each), so a read it cannot
 * hold is copied instead (stream_to_pipe). */
#define STREAM_PIPE (1024 * 1024)
/* An origin silent this long ends the stream (SO_RCVTIMEO). */
#define STREAM_TIMEOUT_S 10
/* Largest read a reply can carry (libfuse's own bound). */
#define STREAM_READ_MAX (1024 * 1024)

/* All of these belong to the session's one thread after stream_open(). */
static int stream_fd = -1;  /* -1: never opened, or broken by an error */
static uint64_t stream_pos; /* file offset of the next body byte */
static uint64_t stream_size;
static int stream_splice;
static int stream_pipe[2] = {-1, -1};
static char *stream_buf;

/* Split "http://A.B.C.D:PORT/PATH" into an address and the path.
 * 0 or -EINVAL. */
static int stream_parse(const char *url, struct sockaddr_in *sa,
			const char **path)
{
	char host[64];
	unsigned int port;
	int n = 0;

	memset(sa, 0, sizeof(*sa));
	if (sscanf(url, "http://%63[0-9.]:%u%n", host, &port, &n) != 2 || !n ||
	    url[n] != '/' || !port || port > 65535)
		return -EINVAL;
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -EINVAL;
	*path = url + n;
	return 0;
}

/* Take the answer's headers off the socket, leaving the body; the body's
 * length in *len. 0, -EPROTO (not a 200 with a length), -EMSGSIZE
 * (headers too long), -ECONNRESET, -ETIMEDOUT or -errno. */
static int stream_head(int fd, uint64_t *len)
{
	char h[STREAM_HEAD_MAX + 1], *end, *cl;
	int tries = 0;
	ssize_t n;

	/* Peek until the blank line is in, then take exactly the headers:
	 * the body must stay on the socket for the reads. Each recv waits
	 * at most STREAM_TIMEOUT_S, the polling at most 5 s more. */
	for (;;) {
		n = recv(fd, h, STREAM_HEAD_MAX, MSG_PEEK);
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (!n)
			return -ECONNRESET;
		h[n] = '\0';
		end = strstr(h, "\r\n\r\n");
		if (end)
			break;
		if (n == STREAM_HEAD_MAX)
			return -EMSGSIZE;
		if (++tries > 5000)
			return -ETIMEDOUT;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	end[2] = '\0';
	if (strncmp(h, "HTTP/1.", 7) != 0 || strncmp(h + 8, " 200 ", 5) != 0)
		return -EPROTO;
	for (cl = strstr(h, "\r\n"); cl; cl = strstr(cl + 2, "\r\n"))
		if (!strncasecmp(cl + 2, "Content-Length:", 15))
			break;
	if (!cl)
		return -EPROTO;
	cl += 17;
	cl += strspn(cl, " \t");
	if (*cl < '0' || *cl > '9' || sscanf(cl, "%" SCNu64, len) != 1)
		return -EPROTO;
	n = end + 4 - h;
	return recv(fd, h, (size_t)n, MSG_WAITALL) == n ? 0 : -EPROTO;
}

int stream_open(const char *url, int splice_it, uint64_t *size)
{
	struct sockaddr_in sa;
	const char *path;
	char req[1024];
	int fd, n, err;

	*size = 0;
	err = stream_parse(url, &sa, &path);
	if (err)
		return err;
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
		     path, inet_ntoa(sa.sin_addr));
	if (n < 0 || (size_t)n >= sizeof(req))
		return -ENAMETOOLONG;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO,
		       &(struct timeval){.tv_sec = STREAM_TIMEOUT_S},
		       sizeof(struct timeval)) ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		err = -errno;
		goto out_close;
	}
	err = stream_head(fd, size);
	if (err)
		goto out_close;
	stream_buf = malloc(STREAM_READ_MAX);
	if (!stream_buf) {
		err = -ENOMEM;
		goto out_close;
	}
	if (splice_it) {
		if (pipe2(stream_pipe, O_CLOEXEC)) {
			err = -errno;
			goto out_free;
		}
		if (fcntl(stream_pipe[1], F_SETPIPE_SZ, STREAM_PIPE) < 0) {
			err = -errno;
			goto out_pipe;
		}
	}
	stream_fd = fd;
	stream_size = *size;
	stream_splice = splice_it;
	return 0;

out_pipe:
	close(stream_pipe[0]);
	close(stream_pipe[1]);
	stream_pipe[0] = stream_pipe[1] = -1;
out_free:
	free(stream_buf);
	stream_buf = NULL;
out_close:
	close(fd);
	return err;
}

void stream_want(struct fuse_conn_info *conn)
{
	if (stream_splice)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
}

/*
 * Move len body bytes from the socket into the pipe. 0, -ENOBUFS when the
 * pipe is full first (the bytes moved so far are still in it), or -errno.
 * Non-blocking splices, waiting on the socket alone: a blocking one would
 * wait on a full pipe that nothing on this thread empties.
 */
static int stream_to_pipe(size_t len)
{
	struct pollfd p = {.fd = stream_fd, .events = POLLIN};
	ssize_t n;

	while (len) {
		n = splice(stream_fd, NULL, stream_pipe[1], NULL, len,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			len -= (size_t)n;
			continue;
		}
		if (!n)
			return -EPIPE;
		if (errno != EAGAIN)
			return -errno;
		/* Bytes on the socket and still EAGAIN: the pipe is full. */
		n = poll(&p, 1, 0);
		if (n > 0)
			return -ENOBUFS;
		n = poll(&p, 1, STREAM_TIMEOUT_S * 1000);
		if (n <= 0)
			return n ? -errno : -ETIMEDOUT;
	}
	return 0;
}

/* Take the bytes a short stream_to_pipe() left in the pipe into the
 * buffer. 0 or -errno. */
static int stream_from_pipe(size_t *got)
{
	int queued;
	ssize_t n;

	*got = 0;
	if (ioctl(stream_pipe[0], FIONREAD, &queued))
		return -errno;
	while (*got < (size_t)queued) {
		n = read(stream_pipe[0], stream_buf + *got,
			 (size_t)queued - *got);
		if (n <= 0)
			return n ? -errno : -EPIPE;
		*got += (size_t)n;
	}
	return 0;
}

void stream_read(fuse_req_t req, size_t size, off_t off)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(0);
	size_t got = 0;
	int err, left;

	if ((uint64_t)off >= stream_size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (stream_fd < 0 || (uint64_t)off != stream_pos) {
		/* Only the next bytes are on the socket. */
		fprintf(stderr,
			"nullfs: read at %jd, the stream is at %" PRIu64 "%s\n",
			(intmax_t)off, stream_pos,
			stream_fd < 0 ? " and broken" : "");
		fuse_reply_err(req, EIO);
		return;
	}
	if (size > STREAM_READ_MAX)
		size = STREAM_READ_MAX;
	if (size > stream_size - stream_pos)
		size = (size_t)(stream_size - stream_pos);
	if (stream_splice) {
		err = stream_to_pipe(size);
		if (!err) {
			bv.buf[0].size = size;
			bv.buf[0].flags = FUSE_BUF_IS_FD;
			bv.buf[0].fd = stream_pipe[0];
			stream_pos += size;
			/* Whatever it returns, libfuse has answered or dropped
			 * the request; bytes it left in the pipe would be
			 * taken for the next read's. */
			fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
			if (ioctl(stream_pipe[0], FIONREAD, &left) || left) {
				fprintf(stderr,
					"nullfs: a spliced reply at "
					"%jd failed\n",
					(intmax_t)off);
				goto out_lost;
			}
			return;
		}
		if (err != -ENOBUFS)
			goto out_broken;
		err = stream_from_pipe(&got);
		if (err)
			goto out_broken;
	}
	if (got < size) {
		ssize_t n = recv(stream_fd, stream_buf + got, size - got,
				 MSG_WAITALL);

		if (n != (ssize_t)(size - got)) {
			err = n < 0 && errno == EAGAIN ? -ETIMEDOUT : -EPIPE;
			goto out_broken;
		}
	}
	stream_pos += size;
	fuse_reply_buf(req, stream_buf, size);
	return;

out_broken:
	fprintf(stderr, "nullfs: the stream broke at %" PRIu64 ": %s\n",
		stream_pos, strerror(-err));
	fuse_reply_err(req, EIO);
out_lost:
	close(stream_fd);
	stream_fd = -1;
}

void stream_close(void)
{
	if (stream_fd >= 0)
		close(stream_fd);
	if (stream_pipe[0] >= 0) {
		close(stream_pipe[0]);
		close(stream_pipe[1]);
	}
	free(stream_buf);
	stream_fd = stream_pipe[0] = stream_pipe[1] = -1;
	stream_buf = NULL;
}
