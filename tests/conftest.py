"""Settings for the whole test process, applied before any test module imports gRPC."""

import os

# Tests start brokers with subprocess and a preexec_fn (fork, then exec).  With gRPC's fork
# support on, the forked child re-initialises gRPC and may start its poller thread before
# close_fds closes that poller's epoll fd; the thread then aborts the child (SIGABRT, "epoll_wait
# error: Bad file descriptor") before exec.  The test process never uses gRPC across a fork.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
