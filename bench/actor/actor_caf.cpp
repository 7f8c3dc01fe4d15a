// The Savina workloads (actor_work.h) on CAF 0.17, written as CAF users
// write them: event-based actors (stateful where they keep state) with
// behaviors over atoms, self->send between actors, anon_send from the
// main thread, self->quit() for the actors of fjcreate. The actor system
// is made once with scheduler.max-threads = the worker count; the main
// thread starts a run with a send and sleeps on a condition variable that
// the actor which sees the end signals (as the weft program does).
#include "bench.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

#include <caf/all.hpp>

#include "actor_work.h"

using namespace caf;

using start_atom = atom_constant<atom("start")>;
using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;
using inc_atom = atom_constant<atom("inc")>;
using get_atom = atom_constant<atom("get")>;
using result_atom = atom_constant<atom("result")>;
using token_atom = atom_constant<atom("token")>;
using work_atom = atom_constant<atom("work")>;
using link_atom = atom_constant<atom("link")>;
using meet_atom = atom_constant<atom("meet")>;
using mate_atom = atom_constant<atom("mate")>;
using stop_atom = atom_constant<atom("stop")>;
using count_atom = atom_constant<atom("count")>;

static actor_system *sys;

// ---- the end of a run

static std::mutex end_mu;
static std::condition_variable end_cv;
static bool ended;
static bench_check end_value;

static void finish(bench_check v)
{
    std::lock_guard<std::mutex> g(end_mu);
    end_value = v;
    ended = true;
    end_cv.notify_one();
}

static bench_check await_end()
{
    std::unique_lock<std::mutex> g(end_mu);
    end_cv.wait(g, [] { return ended; });
    ended = false;
    return end_value;
}

static std::atomic<long> left_count, total;

static void count_down(long add)
{
    total.fetch_add(add, std::memory_order_relaxed);
    if (left_count.fetch_sub(1, std::memory_order_acq_rel) == 1)
        finish((bench_check)total.load());
}

static void drop(const actor &a)
{
    anon_send_exit(a, exit_reason::user_shutdown);
}

// ---- pingpong

struct ping_state { long n = 0, got = 0; };

static behavior ping_fn(stateful_actor<ping_state> *self, actor pong)
{
    return {
        [=](start_atom, long n) {
            self->state.n = n;
            self->state.got = 0;
            self->send(pong, ping_atom::value, actor{self});
        },
        [=](pong_atom) {
            if (++self->state.got == self->state.n)
                finish((bench_check)self->state.got);
            else
                self->send(pong, ping_atom::value, actor{self});
        },
    };
}

static behavior pong_fn(event_based_actor *self)
{
    return {
        [=](ping_atom, const actor &from) {
            self->send(from, pong_atom::value);
        },
    };
}

static bench_check pingpong(long n)
{
    auto pong = sys->spawn(pong_fn);
    auto ping = sys->spawn(ping_fn, pong);
    anon_send(ping, start_atom::value, n);
    bench_check c = await_end();
    drop(ping);
    drop(pong);
    return c;
}

// ---- counting

static behavior counter_fn(stateful_actor<long> *self)
{
    self->state = 0;
    return {
        [=](inc_atom, long v) { self->state += v; },
        [=](get_atom, const actor &from) {
            self->send(from, result_atom::value, self->state);
        },
    };
}

static behavior producer_fn(event_based_actor *self, actor counter)
{
    return {
        [=](start_atom, long n) {
            for (long i = 0; i < n; i++)
                self->send(counter, inc_atom::value, i);
            self->send(counter, get_atom::value, actor{self});
        },
        [=](result_atom, long v) { finish((bench_check)v); },
    };
}

static bench_check counting(long n)
{
    auto c = sys->spawn(counter_fn);
    auto p = sys->spawn(producer_fn, c);
    anon_send(p, start_atom::value, n);
    bench_check r = await_end();
    drop(p);
    drop(c);
    return r;
}

// ---- threadring

struct ring_state { actor next; long id = 0; };

static behavior ring_fn(stateful_actor<ring_state> *self, long id)
{
    self->state.id = id;
    return {
        [=](link_atom, const actor &next) { self->state.next = next; },
        [=](token_atom, long v) {
            if (v == 0)
                finish((bench_check)self->state.id);
            else
                self->send(self->state.next, token_atom::value, v - 1);
        },
    };
}

static bench_check threadring(long n)
{
    std::vector<actor> ring;
    for (long i = 0; i < RING; i++)
        ring.push_back(sys->spawn(ring_fn, i));
    for (long i = 0; i < RING; i++)
        anon_send(ring[i], link_atom::value, ring[(i + 1) % RING]);
    anon_send(ring[0], token_atom::value, n);
    bench_check r = await_end();
    for (auto &a : ring)
        drop(a);
    return r;
}

// ---- fjthrput

struct fj_state { long n = 0, got = 0, acc = 0; };

static behavior fj_fn(stateful_actor<fj_state> *self, long n)
{
    self->state.n = n;
    return {
        [=](work_atom, long v) {
            self->state.acc += fj_work(v);
            if (++self->state.got == self->state.n)
                count_down(self->state.acc);
        },
    };
}

static bench_check fjthrput(long n)
{
    left_count = FJ_ACTORS;
    total = 0;
    std::vector<actor> a;
    for (int i = 0; i < FJ_ACTORS; i++)
        a.push_back(sys->spawn(fj_fn, n));
    for (long k = 0; k < n; k++)
        for (int i = 0; i < FJ_ACTORS; i++)
            anon_send(a[i], work_atom::value, k);
    bench_check r = await_end();
    for (auto &x : a)
        drop(x);
    return r;
}

// ---- fjcreate

static behavior fjc_fn(event_based_actor *self)
{
    return {
        [=](work_atom, long v) {
            long r = fj_work(v);
            self->quit();
            count_down(r);
        },
    };
}

static bench_check fjcreate(long n)
{
    left_count = n;
    total = 0;
    for (long i = 0; i < n; i++)
        anon_send(sys->spawn(fjc_fn), work_atom::value, i);
    return await_end();
}

// ---- big

struct big_state { long n = 0, pongs = 0; uint64_t rng = 0; };
static std::vector<actor> big_actors;

static void big_ping(stateful_actor<big_state> *self)
{
    auto &to = big_actors[bench_xorshift(&self->state.rng) % BIG_ACTORS];
    self->send(to, ping_atom::value, actor{self});
}

static behavior big_fn(stateful_actor<big_state> *self, long seed)
{
    self->state.rng = 0x9E3779B97F4A7C15ull * (uint64_t)seed + 1;
    return {
        [=](start_atom, long n) {
            self->state.n = n;
            big_ping(self);
        },
        [=](ping_atom, const actor &from) {
            self->send(from, pong_atom::value);
        },
        [=](pong_atom) {
            if (++self->state.pongs == self->state.n)
                count_down(self->state.pongs);
            else
                big_ping(self);
        },
    };
}

static bench_check big(long n)
{
    left_count = BIG_ACTORS;
    total = 0;
    big_actors.clear();
    for (long i = 0; i < BIG_ACTORS; i++)
        big_actors.push_back(sys->spawn(big_fn, i + 1));
    for (auto &a : big_actors)
        anon_send(a, start_atom::value, n);
    bench_check r = await_end();
    for (auto &a : big_actors)
        drop(a);
    big_actors.clear();
    return r;
}

// ---- chameneos

struct mall_state {
    long left = 0, sum = 0;
    int stopped = 0;
    actor waiting;
    int wcolor = 0;
};

static behavior mall_fn(stateful_actor<mall_state> *self)
{
    return {
        [=](start_atom, long n) { self->state.left = n; },
        [=](count_atom, long meetings) {
            self->state.sum += meetings;
            if (++self->state.stopped == CHAM)
                finish((bench_check)self->state.sum);
        },
        [=](meet_atom, const actor &from, int color) {
            auto &s = self->state;
            if (s.left == 0) {
                self->send(from, stop_atom::value);
            } else if (!s.waiting) {
                s.waiting = from;
                s.wcolor = color;
            } else {
                s.left--;
                self->send(s.waiting, mate_atom::value, from, color);
                self->send(from, mate_atom::value, s.waiting, s.wcolor);
                s.waiting = actor{};
            }
            if (s.left == 0 && s.waiting) {
                self->send(s.waiting, stop_atom::value);
                s.waiting = actor{};
            }
        },
    };
}

struct cham_state { int color = 0; long meetings = 0; };

static behavior cham_fn(stateful_actor<cham_state> *self, actor mall)
{
    return {
        [=](start_atom, int color) {
            self->state.color = color;
            self->send(mall, meet_atom::value, actor{self}, color);
        },
        [=](mate_atom, const actor &, int color) {
            auto &s = self->state;
            s.meetings++;
            s.color = cham_complement(s.color, color);
            self->send(mall, meet_atom::value, actor{self}, s.color);
        },
        [=](stop_atom) {
            self->send(mall, count_atom::value, self->state.meetings);
        },
    };
}

static bench_check chameneos(long n)
{
    auto mall = sys->spawn(mall_fn);
    anon_send(mall, start_atom::value, n);
    std::vector<actor> c;
    for (int i = 0; i < CHAM; i++)
        c.push_back(sys->spawn(cham_fn, mall));
    for (int i = 0; i < CHAM; i++)
        anon_send(c[i], start_atom::value, i % 3);
    bench_check r = await_end();
    for (auto &a : c)
        drop(a);
    drop(mall);
    return r;
}

// ---- manysenders

struct sink_state { long n = 0, got = 0; };

static behavior sink_fn(stateful_actor<sink_state> *self, long n)
{
    self->state.n = n;
    return {
        [=](work_atom, long v) {
            self->state.got += v;
            if (self->state.got == self->state.n)
                finish((bench_check)self->state.got);
        },
    };
}

static behavior sender_fn(event_based_actor *self, actor sink)
{
    return {
        [=](start_atom, long n) {
            for (long i = 0; i < n; i++)
                self->send(sink, work_atom::value, 1L);
        },
    };
}

static bench_check manysenders(long n)
{
    auto sink = sys->spawn(sink_fn, n);
    std::vector<actor> s;
    for (int i = 0; i < SENDERS; i++)
        s.push_back(sys->spawn(sender_fn, sink));
    for (int i = 0; i < SENDERS; i++)
        anon_send(s[i], start_atom::value,
                  n / SENDERS + (i < n % SENDERS ? 1L : 0L));
    bench_check r = await_end();
    for (auto &a : s)
        drop(a);
    drop(sink);
    return r;
}

// ---- driver

static actor_system_config *cfg;

static int setup(int workers)
{
    cfg = new actor_system_config;
    cfg->set("scheduler.max-threads", (size_t)workers);
    sys = new actor_system(*cfg);
    return 0;
}

static void teardown(int verbose)
{
    (void)verbose;
    delete sys;
    delete cfg;
}

int main(int argc, char **argv)
{
    static const bench_impl impl = {"caf", 0, setup, teardown};
    static const bench_workload w[] = {
        {"pingpong", pingpong},     {"counting", counting},
        {"threadring", threadring}, {"fjthrput", fjthrput},
        {"fjcreate", fjcreate},     {"big", big},
        {"chameneos", chameneos},   {"manysenders", manysenders},
    };
    return bench_main(argc, argv, &impl, w, sizeof w / sizeof w[0]);
}
