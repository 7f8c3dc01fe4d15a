/* The raw MPI baseline for bench/net, under mpirun -np 2: blocking
 * MPI_Send/MPI_Recv between ranks 0 and 1.
 *   rt   N ping-pongs of 8 bytes (-l BYTES: of that many)
 *   bw   4 transfers of N bytes, each acknowledged by one byte
 * -t: MPI_Init_thread(MPI_THREAD_SERIALIZED), the level weft's mpi
 * transport asks for (its threads take turns in MPI). Open MPI 4.1
 * costs about 0.2 us more per ping-pong at any level above
 * MPI_THREAD_SINGLE, and a message of 12 bytes or more about 0.25 us
 * more than one of 8 (measured on the 2-core VM): `-t -l 48` is a
 * ping-pong of what a weft round trip sends (a 32-byte frame and a
 * 16-byte task or reply header), at weft's thread level.
 * Rank 0 prints RESULT lines as net-weft does (impl=raw-mpi, or
 * raw-mpi-tN with -t and -l N). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *k = "rt";
    long size = 10000;
    int runs = 3, opt, rank, threads = 0, rtlen = 8;
    while ((opt = getopt(argc, argv, "k:n:r:w:c:vtl:")) != -1) {
        if (opt == 'k')
            k = optarg;
        else if (opt == 'n')
            size = atol(optarg);
        else if (opt == 'r')
            runs = atoi(optarg);
        else if (opt == 't')
            threads = 1;
        else if (opt == 'l')
            rtlen = atoi(optarg);
    }
    if (rtlen < 1 || rtlen > 4096) {
        fprintf(stderr, "net-raw-mpi: -l takes 1..4096\n");
        return 2;
    }
    int provided;
    if (threads)
        MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
    else
        MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    size_t cap = (size_t)(size > rtlen ? size : rtlen);
    char *b = malloc(cap);
    memset(b, 0x5a, cap);
    char impl[32] = "raw-mpi";
    if (threads || rtlen != 8)
        snprintf(impl, sizeof impl, "raw-mpi-%s%d", threads ? "t" : "",
                 rtlen);
    int rt = !strcmp(k, "rt"), peer = 1 - rank;
    for (int r = 0; r <= runs && rank < 2; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        unsigned long long check = 0;
        long n = rt ? size : 4;
        int len = rt ? rtlen : (int)size;
        for (long i = 0; i < n; i++) {
            if (rank == 0) {
                MPI_Send(b, len, MPI_BYTE, peer, 1, MPI_COMM_WORLD);
                MPI_Recv(b, rt ? rtlen : 1, MPI_BYTE, peer, 1,
                         MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                check += rt ? 1 : (unsigned long long)size;
            } else {
                MPI_Recv(b, len, MPI_BYTE, peer, 1, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
                MPI_Send(b, rt ? rtlen : 1, MPI_BYTE, peer, 1,
                         MPI_COMM_WORLD);
            }
        }
        double s = MPI_Wtime() - t0;
        if (rank || r == 0)
            continue;
        printf("RESULT name=%s impl=%s workers=2 size=%ld seconds=%.6f "
               "check=%llu rss_kb=0", k, impl, size, s, check);
        if (rt)
            printf(" us_per_op=%.3f\n", s * 1e6 / (double)size);
        else
            printf(" gb_per_s=%.3f\n", (double)check / s / 1e9);
        fflush(stdout);
    }
    free(b);
    MPI_Finalize();
    return 0;
}
