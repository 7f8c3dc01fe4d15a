/* The raw MPI baseline for bench/net, under mpirun -np 2: blocking
 * MPI_Send/MPI_Recv between ranks 0 and 1.
 *   rt   N ping-pongs of 8 bytes
 *   bw   4 transfers of N bytes, each acknowledged by one byte
 * Rank 0 prints RESULT lines as net-weft does (impl=raw-mpi). */
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
    MPI_Init(&argc, &argv);
    const char *k = "rt";
    long size = 10000;
    int runs = 3, opt, rank;
    while ((opt = getopt(argc, argv, "k:n:r:w:c:v")) != -1) {
        if (opt == 'k')
            k = optarg;
        else if (opt == 'n')
            size = atol(optarg);
        else if (opt == 'r')
            runs = atoi(optarg);
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char *b = malloc(size > 8 ? (size_t)size : 8);
    memset(b, 0x5a, size > 8 ? (size_t)size : 8);
    int rt = !strcmp(k, "rt"), peer = 1 - rank;
    for (int r = 0; r <= runs && rank < 2; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        unsigned long long check = 0;
        long n = rt ? size : 4;
        int len = rt ? 8 : (int)size;
        for (long i = 0; i < n; i++) {
            if (rank == 0) {
                MPI_Send(b, len, MPI_BYTE, peer, 1, MPI_COMM_WORLD);
                MPI_Recv(b, rt ? 8 : 1, MPI_BYTE, peer, 1, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
                check += rt ? 1 : (unsigned long long)size;
            } else {
                MPI_Recv(b, len, MPI_BYTE, peer, 1, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
                MPI_Send(b, rt ? 8 : 1, MPI_BYTE, peer, 1, MPI_COMM_WORLD);
            }
        }
        double s = MPI_Wtime() - t0;
        if (rank || r == 0)
            continue;
        printf("RESULT name=%s impl=raw-mpi workers=2 size=%ld seconds=%.6f "
               "check=%llu rss_kb=0", k, size, s, check);
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
