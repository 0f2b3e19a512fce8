/* The kernel floor: a UDP receiver that takes datagrams with recvmmsg and
 * throws them away. What it costs per line is the least any statsd server
 * can pay on this machine for the same load (the kernel's receive path plus
 * one system call per batch). bench/compare.py runs it as the "floor" row.
 *
 *   floor PORT [BATCH]   binds 127.0.0.1:PORT with the kernel's default
 *                        receive buffer; on SIGTERM prints
 *                        {"datagrams": N, "bytes": B, "calls": C} and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#define MAX_BATCH 1024
#define SLOT 65536

static volatile sig_atomic_t stop;

static void on_term(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: floor PORT [BATCH]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    int batch = argc > 2 ? atoi(argv[2]) : 32;
    if (port <= 0 || port > 65535 || batch <= 0 || batch > MAX_BATCH) {
        fprintf(stderr, "floor: bad port or batch\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term; /* no SA_RESTART: recvmmsg returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) { perror("socket"); return 1; }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("bind"); return 1; }
    /* Wake up now and then to see SIGTERM even if it raced the call. */
    struct timeval tv = {0, 100000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    char *buf = malloc((size_t)batch * SLOT);
    struct iovec *iov = calloc((size_t)batch, sizeof *iov);
    struct mmsghdr *msgs = calloc((size_t)batch, sizeof *msgs);
    if (!buf || !iov || !msgs) { perror("malloc"); return 1; }
    for (int i = 0; i < batch; i++) {
        iov[i].iov_base = buf + (size_t)i * SLOT;
        iov[i].iov_len = SLOT;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long datagrams = 0, bytes = 0, calls = 0;
    /* After SIGTERM, take what is still queued without blocking, then stop. */
    for (;;) {
        int n = recvmmsg(fd, msgs, (unsigned)batch, stop ? MSG_DONTWAIT : MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
                if (stop && errno != EINTR) break;
                continue;
            }
            perror("recvmmsg");
            return 1;
        }
        calls++;
        datagrams += (unsigned long long)n;
        for (int i = 0; i < n; i++) bytes += msgs[i].msg_len;
    }
    printf("{\"datagrams\": %llu, \"bytes\": %llu, \"calls\": %llu}\n", datagrams, bytes, calls);
    return 0;
}
