/* The "tcp" transport in this process, with a hand-made peer: this test
 * plays rank 1 over a plain socket, writing the frames of wire.h itself,
 * and drives rank 0's progress. A stream that stalls for want of memory
 * for a payload (here one no allocator can give: a length the peer
 * announced, under an unlimited max_payload) ends as its peer's failure
 * once the peer has been silent for dead_timeout_ms; the stream's socket
 * and buffers must go with it, not wait for the transport's close. */
#include <errno.h>
#include <dirent.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <weft.h>

#include "net_internal.h"

#define MS 1000000ll

/* Open file descriptors of this process. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own */
}

/* A loopback port free a moment ago. */
static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (s >= 0 && !bind(s, (struct sockaddr *)&a, sizeof a) &&
        !getsockname(s, (struct sockaddr *)&a, &len))
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

static int joined = -1, failed = -1, fail_reason;

static void on_recv(void *ctx, weft_am *m)
{
    (void)ctx;
    (void)m;
}

static void on_joined(void *ctx, int rank)
{
    (void)ctx;
    joined = rank;
}

static void on_failed(void *ctx, int rank, int reason)
{
    (void)ctx;
    failed = rank;
    fail_reason = reason;
}

/* Write a frame header from rank 1 (handler 1, no header bytes, paylen
 * announced) to s. */
static void put_frame(int s, unsigned kind, uint64_t paylen)
{
    weft__frame f = {kind, kind == WEFT__FK_AM, 1, 0, paylen};
    unsigned char b[WEFT__FRAME_LEN];
    weft__frame_encode(b, &f);
    assert_int_equal(send(s, b, sizeof b, MSG_NOSIGNAL), (ssize_t)sizeof b);
}

static void test_stalled_stream_released(void **state)
{
    (void)state;
    const weft_transport_ops *ops = weft_transport_find("tcp");
    assert_non_null(ops);
    int port = free_port();
    assert_true(port > 0);
    char peers[64];
    snprintf(peers, sizeof peers, "127.0.0.1:%d,127.0.0.1:1", port);
    weft_transport_params p = weft_net_config_default().params;
    p.peers = peers;
    p.rank = 0;
    p.heartbeat_ms = 10;
    p.dead_timeout_ms = 100;
    p.max_payload = UINT64_MAX;
    weft_transport_events ev = {NULL, on_recv, on_joined, on_failed, NULL};
    weft_transport *t;
    assert_int_equal(ops->open(&t, &p, &ev), 0);
    int fds = count_fds();
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    /* who we are, then a payload no one can hold: the stream stalls */
    put_frame(s, WEFT__FK_HELLO, 0);
    put_frame(s, WEFT__FK_AM, UINT64_MAX);
    /* silent from here on: rank 1 is failed after the dead timeout
     * (bounded only so that a broken transport fails, not hangs) */
    for (int i = 0; i < 20000 && failed < 0; i++)
        assert_int_equal(ops->progress(t, MS), 0);
    assert_int_equal(joined, 1);
    assert_int_equal(failed, 1);
    assert_int_equal(fail_reason, -ETIMEDOUT);
    for (int i = 0; i < 3; i++) /* a few more turns: nothing in flight */
        assert_int_equal(ops->progress(t, 0), 0);
    close(s);
    /* the accepted stream's socket is closed by now */
    assert_int_equal(count_fds(), fds);
    ops->close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_stream_released),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
