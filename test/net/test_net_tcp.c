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
#include <sys/resource.h>
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

/* The transport as rank 0 of two, on a free loopback port, with the
 * timing of p (rank 1 is this test, over a plain socket); *a gets rank
 * 0's address. The events are this file's. */
static weft_transport *open_rank0(const weft_transport_ops *ops,
                                  weft_transport_params p,
                                  struct sockaddr_in *a)
{
    int port = free_port();
    assert_true(port > 0);
    char peers[64];
    snprintf(peers, sizeof peers, "127.0.0.1:%d,127.0.0.1:1", port);
    p.peers = peers; /* parsed by open */
    p.rank = 0;
    weft_transport_events ev = {NULL, on_recv, on_joined, on_failed, NULL};
    weft_transport *t;
    assert_int_equal(ops->open(&t, &p, &ev), 0);
    *a = (struct sockaddr_in){.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    return t;
}

static void test_stalled_stream_released(void **state)
{
    (void)state;
    const weft_transport_ops *ops = weft_transport_find("tcp");
    assert_non_null(ops);
    weft_transport_params p = weft_net_config_default().params;
    p.heartbeat_ms = 10;
    p.dead_timeout_ms = 100;
    p.max_payload = UINT64_MAX;
    struct sockaddr_in a;
    weft_transport *t = open_rank0(ops, p, &a);
    int fds = count_fds();
    int s = socket(AF_INET, SOCK_STREAM, 0);
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

static int sent_status = 1;

static void on_sent(void *arg, int status)
{
    (void)arg;
    sent_status = status;
}

/* Read frames from s until end of stream; count the active messages of
 * handler 7 among them. */
static int count_ams(int s)
{
    static unsigned char buf[1 << 16];
    size_t len = 0;
    int n = 0;
    for (;;) {
        ssize_t r = recv(s, buf + len, sizeof buf - len, 0);
        assert_true(r >= 0);
        if (r == 0)
            break;
        len += (size_t)r;
        size_t pos = 0;
        weft__frame f;
        while (!weft__frame_decode(buf + pos, len - pos, UINT64_MAX, &f) &&
               len - pos >= WEFT__FRAME_LEN + f.hdrlen + f.paylen) {
            n += f.kind == WEFT__FK_AM && f.handler == 7;
            pos += WEFT__FRAME_LEN + f.hdrlen + f.paylen;
        }
        memmove(buf, buf + pos, len - pos);
        len -= pos;
    }
    return n;
}

/* A message a stream took whole is not sent again on the next stream.
 * Here the stream is closed by this side (a malformed frame from the
 * peer) in the same turn in which a send on it completed: the frame's
 * bytes came before the send was submitted, so its receive's completion
 * is reaped first. The peer, alive, reads the whole message on the old
 * stream; when it comes back with a new one, it must not get it again
 * (a task run twice, a reply answered twice). */
static void test_no_resend_of_written(void **state)
{
    (void)state;
    const weft_transport_ops *ops = weft_transport_find("tcp");
    weft_transport_params p = weft_net_config_default().params;
    p.heartbeat_ms = 60000; /* no beats, nothing else on the streams */
    p.dead_timeout_ms = 120000;
    struct sockaddr_in a;
    weft_transport *t = open_rank0(ops, p, &a);
    joined = -1;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    put_frame(s, WEFT__FK_HELLO, 0);
    for (int i = 0; i < 20000 && joined < 0; i++)
        assert_int_equal(ops->progress(t, MS), 0);
    assert_int_equal(joined, 1);
    for (int i = 0; i < 3; i++) /* the first heartbeat goes out */
        assert_int_equal(ops->progress(t, 0), 0);
    /* garbage from the peer: its receive completes before this thread
     * enters the ring again (loopback delivers within send) */
    unsigned char junk[WEFT__FRAME_LEN];
    memset(junk, 0x5a, sizeof junk);
    assert_int_equal(send(s, junk, sizeof junk, MSG_NOSIGNAL),
                     (ssize_t)sizeof junk);
    usleep(10000);
    static char pay[1000];
    struct iovec iov = {pay, sizeof pay};
    assert_int_equal(ops->send(t, 1, 7, NULL, 0, &iov, 1, on_sent, NULL),
                     0);
    assert_int_equal(ops->progress(t, 0), 0);
    /* the old stream: the message whole, then its end */
    assert_int_equal(count_ams(s), 1);
    close(s);
    /* the peer comes back */
    joined = -1;
    s = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    put_frame(s, WEFT__FK_HELLO, 0);
    for (int i = 0; i < 20000 && joined < 0; i++)
        assert_int_equal(ops->progress(t, MS), 0);
    assert_int_equal(joined, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ops->progress(t, 0), 0);
    assert_int_equal(sent_status, 0);
    ops->close(t); /* a bye, and the end of the new stream */
    assert_int_equal(count_ams(s), 0);
    close(s);
}

/* An accept that fails for want of descriptors (EMFILE here; ENFILE for
 * the whole system alike) leaves the connection in the backlog, so a new
 * accept fails at once again: the transport must wait a while before it
 * tries again, not spin its thread, and take the connection once
 * descriptors are back. Counted: the turns of progress (each waiting up
 * to 20 ms when nothing happens) in 300 ms with no descriptor to give;
 * a spinning transport makes thousands. */
static void test_accept_backoff(void **state)
{
    (void)state;
    const weft_transport_ops *ops = weft_transport_find("tcp");
    weft_transport_params p = weft_net_config_default().params;
    p.heartbeat_ms = 60000; /* no other reason to wake */
    p.dead_timeout_ms = 120000;
    struct sockaddr_in a;
    weft_transport *t = open_rank0(ops, p, &a);
    int s1 = socket(AF_INET, SOCK_STREAM, 0);
    int s2 = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s1 >= 0 && s2 >= 0);
    /* no descriptor left: the limit at the lowest free one */
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int low = dup(0);
    assert_true(low >= 0);
    close(low);
    struct rlimit lim = {(rlim_t)low, old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
    /* the accept armed before may still take one (the limit it was
     * prepared with); the one after it cannot */
    joined = -1;
    assert_int_equal(connect(s1, (struct sockaddr *)&a, sizeof a), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ops->progress(t, 0), 0);
    assert_int_equal(connect(s2, (struct sockaddr *)&a, sizeof a), 0);
    put_frame(s2, WEFT__FK_HELLO, 0);
    int turns = 0;
    for (uint64_t end = weft__now_ns() + 300 * MS; weft__now_ns() < end;
         turns++)
        if (ops->progress(t, 20 * MS))
            break;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_in_range(turns, 0, 99);
    assert_int_equal(joined, -1);
    /* descriptors again: the connection is taken */
    for (int i = 0; i < 20000 && joined < 0; i++)
        assert_int_equal(ops->progress(t, MS), 0);
    assert_int_equal(joined, 1);
    ops->close(t);
    close(s1);
    close(s2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_stream_released),
        cmocka_unit_test(test_no_resend_of_written),
        cmocka_unit_test(test_accept_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
