/* The raw TCP baseline for bench/net: two processes on loopback (this one
 * forks its peer), blocking sockets, TCP_NODELAY.
 *   rt   N ping-pongs of 8 bytes (the echo a remote round trip is
 *        compared with)
 *   bw   4 transfers of N bytes, each acknowledged by one byte
 * Prints RESULT lines as net-weft does (impl=raw-tcp). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int full(int fd, void *b, size_t n, int rd)
{
    for (size_t d = 0; d < n;) {
        ssize_t k = rd ? read(fd, (char *)b + d, n - d)
                       : write(fd, (char *)b + d, n - d);
        if (k <= 0)
            return -1;
        d += (size_t)k;
    }
    return 0;
}

static void serve(int fd, const char *k, long size, int rounds)
{
    if (!strcmp(k, "rt")) {
        uint64_t x;
        while (!full(fd, &x, sizeof x, 1))
            full(fd, &x, sizeof x, 0);
        return;
    }
    char *b = malloc((size_t)size);
    for (int r = 0; r < rounds; r++) {
        if (full(fd, b, (size_t)size, 1))
            break;
        full(fd, b, 1, 0);
    }
    free(b);
}

int main(int argc, char **argv)
{
    const char *k = "rt";
    long size = 10000;
    int runs = 3, opt;
    while ((opt = getopt(argc, argv, "k:n:r:w:c:v")) != -1) {
        if (opt == 'k')
            k = optarg;
        else if (opt == 'n')
            size = atol(optarg);
        else if (opt == 'r')
            runs = atoi(optarg);
    }
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) ||
        getsockname(l, (struct sockaddr *)&a, &al))
        return 1;
    int rounds = (runs + 1) * 4;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = accept(l, NULL, NULL);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        serve(fd, k, size, rounds);
        _exit(0);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a))
        return 1;
    char *b = malloc(size > 8 ? (size_t)size : 8);
    memset(b, 0x5a, size > 8 ? (size_t)size : 8);
    for (int r = 0; r <= runs; r++) {
        double t0 = now_s();
        unsigned long long check = 0;
        if (!strcmp(k, "rt")) {
            for (long i = 0; i < size; i++) {
                uint64_t x = (uint64_t)i;
                full(fd, &x, sizeof x, 0);
                full(fd, &x, sizeof x, 1);
                check += x == (uint64_t)i;
            }
        } else {
            for (int i = 0; i < 4; i++) {
                full(fd, b, (size_t)size, 0);
                full(fd, b, 1, 1);
                check += (unsigned long long)size;
            }
        }
        double s = now_s() - t0;
        if (r == 0)
            continue;
        printf("RESULT name=%s impl=raw-tcp workers=2 size=%ld seconds=%.6f "
               "check=%llu rss_kb=0", k, size, s, check);
        if (!strcmp(k, "rt"))
            printf(" us_per_op=%.3f\n", s * 1e6 / (double)size);
        else
            printf(" gb_per_s=%.3f\n", (double)check / s / 1e9);
    }
    close(fd);
    waitpid(pid, NULL, 0);
    free(b);
    return 0;
}
