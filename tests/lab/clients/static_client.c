/*
 * A plain HTTP/1.1 client on one kept-alive TCP connection, meant to be
 * built with `gcc -static`: no preload library can reach it, and it sets no
 * socket option itself.
 *
 *   static_client HOST PORT IDLE_SECONDS PATH...
 *
 * One GET per PATH on one connection, IDLE_SECONDS of sleep between two.
 * Events on stdout, one JSON line each, like the lab's other clients:
 *   {"event": "response", "n": 1, "status": 200, "local_port": P}
 *   {"event": "idle", "n": 1, "seconds": S}
 *   {"event": "sending", "n": 2}
 *   {"event": "error", "n": 2, "exc_type": "ETIMEDOUT", "message": "..."}
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(int n, const char *what)
{
	int e = errno;
	printf("{\"event\": \"error\", \"n\": %d, \"exc_type\": \"%s\", \"message\": \"%s: %s\"}\n",
	       n, e == ETIMEDOUT ? "ETIMEDOUT" : "OSError", what, strerror(e));
	fflush(stdout);
	return 1;
}

/* Reads one response: headers, then Content-Length bytes of body. */
static int read_response(int fd, int *status)
{
	char buf[65536];
	size_t have = 0;
	char *end = NULL;
	while (!end) {
		if (have == sizeof(buf) - 1)
			return errno = EMSGSIZE, -1;
		ssize_t r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
		if (r <= 0)
			return r == 0 ? (errno = ECONNRESET, -1) : -1;
		have += (size_t)r;
		buf[have] = 0;
		end = strstr(buf, "\r\n\r\n");
	}
	*status = atoi(buf + 9);
	const char *cl = strcasestr(buf, "\r\nContent-Length:");
	long body = cl ? atol(cl + 17) : 0;
	long got = (long)(have - (size_t)(end + 4 - buf));
	while (got < body) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r <= 0)
			return r == 0 ? (errno = ECONNRESET, -1) : -1;
		got += r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s HOST PORT IDLE_SECONDS PATH...\n", argv[0]);
		return 2;
	}
	/* inet_pton, not getaddrinfo: a static glibc cannot resolve names. */
	struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = in4.sin_port};
	struct sockaddr *addr = (struct sockaddr *)&in4;
	socklen_t addrlen = sizeof(in4);
	if (inet_pton(AF_INET6, argv[1], &in6.sin6_addr) == 1) {
		addr = (struct sockaddr *)&in6;
		addrlen = sizeof(in6);
	} else if (inet_pton(AF_INET, argv[1], &in4.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", argv[1]);
		return 2;
	}
	int fd = socket(addr->sa_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, addr, addrlen) < 0)
		return fail(1, "connect");
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	getsockname(fd, (struct sockaddr *)&local, &len);
	int port = ntohs(local.ss_family == AF_INET ? ((struct sockaddr_in *)&local)->sin_port
						     : ((struct sockaddr_in6 *)&local)->sin6_port);
	for (int i = 4; i < argc; i++) {
		int n = i - 3;
		if (n > 1) {
			printf("{\"event\": \"idle\", \"n\": %d, \"seconds\": %s}\n", n - 1, argv[3]);
			fflush(stdout);
			sleep((unsigned)atoi(argv[3]));
		}
		printf("{\"event\": \"sending\", \"n\": %d}\n", n);
		fflush(stdout);
		char req[1024];
		int l = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: lab\r\n\r\n", argv[i]);
		if (send(fd, req, (size_t)l, MSG_NOSIGNAL) != l)
			return fail(n, "send");
		int status = 0;
		if (read_response(fd, &status) < 0)
			return fail(n, "recv");
		printf("{\"event\": \"response\", \"n\": %d, \"status\": %d, \"local_port\": %d}\n", n,
		       status, port);
		fflush(stdout);
	}
	printf("{\"event\": \"result\", \"outcome\": \"ok\"}\n");
	return 0;
}
