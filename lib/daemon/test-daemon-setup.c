/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "daemon-setup.h"
#include "nofile.h"
#include "tests.h"

/* Each case runs in a child (tests_in_child()): it puts sockets at fds 3 and 4, as a
 * service manager does, and blocks signals. */

static bool fd_open(int fd) {
        return fcntl(fd, F_GETFD) >= 0;
}

/* A listening socket at fd target, on an abstract address the kernel picks. */
static int listening_socket_at(int target) {
        /* Zeroed whole: valgrind reads sun_path as a string whatever the length says. */
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        /* Binding only the family asks for an abstract address of the kernel's choice. */
        if (fd < 0 || bind(fd, (const struct sockaddr *) &sa, sizeof(sa_family_t)) < 0)
                return -1;
        if (listen(fd, 1) < 0 || dup2(fd, target) != target)
                return -1;
        if (fd != target)
                close(fd);
        return 0;
}

static void pass_fds(unsigned n) {
        char s[32];

        snprintf(s, sizeof(s), "%d", (int) getpid());
        setenv("LISTEN_PID", s, 1);
        snprintf(s, sizeof(s), "%u", n);
        setenv("LISTEN_FDS", s, 1);
        unsetenv("LISTEN_FDNAMES");
}

/* The listen_fd of the cases: records the fds, fails when told to (closing the fd). */
typedef struct Taken {
        int fds[4];
        unsigned n;
        int fail_at; /* the call that fails, -1 for none */
} Taken;

static int take_fd(int fd, void *userdata) {
        Taken *t = userdata;

        if ((int) t->n == t->fail_at) {
                close(fd);
                return -ENOMEM;
        }
        t->fds[t->n++] = fd;
        return 0;
}

static int new_daemon(const Address *a, Daemon **ret) {
        return daemon_new(&(const DaemonOptions) { .ident = "test", .address = a, .bus_name = "org.mrkv.Test" },
                          ret);
}

static char dir[] = "/tmp/test-daemon-setup-XXXXXX";

static int binds_address(void) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        _cleanup_free_ char *path = NULL;
        Address a;
        Taken t = { .fail_at = -1 };
        struct stat st;

        unsetenv("LISTEN_FDS");
        CHILD_CHECK(asprintf(&path, "unix:%s/test.sock", dir) > 0);
        CHILD_CHECK(address_parse(path, &a) == 0);
        CHILD_CHECK(new_daemon(&a, &d) == 0);
        CHILD_CHECK(daemon_listen(d, take_fd, &t) == 0);
        CHILD_CHECK(d->bound);
        CHILD_CHECK(t.n == 1);
        CHILD_CHECK(sd_is_socket(t.fds[0], AF_UNIX, SOCK_STREAM, 1) > 0);
        CHILD_CHECK(stat(path + 5, &st) == 0 && S_ISSOCK(st.st_mode));
        /* The socket file is the daemon's to remove. */
        close(t.fds[0]);
        d = daemon_free(d);
        CHILD_CHECK(stat(path + 5, &st) < 0 && errno == ENOENT);
        address_done(&a);
        return 0;
}

static int takes_passed(void) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        Address a;
        Taken t = { .fail_at = -1 };

        CHILD_CHECK(listening_socket_at(3) == 0);
        CHILD_CHECK(listening_socket_at(4) == 0);
        pass_fds(2);
        /* The address is not bound when sockets are passed. */
        CHILD_CHECK(address_parse("unix:/nonexistent/dir/test.sock", &a) == 0);
        CHILD_CHECK(new_daemon(&a, &d) == 0);
        CHILD_CHECK(daemon_listen(d, take_fd, &t) == 0);
        CHILD_CHECK(!d->bound);
        CHILD_CHECK(t.n == 2 && t.fds[0] == 3 && t.fds[1] == 4);
        CHILD_CHECK(!getenv("LISTEN_FDS"));
        address_done(&a);
        return 0;
}

static int closes_rest_on_failure(void) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        Address a;
        Taken t = { .fail_at = 0 };

        CHILD_CHECK(listening_socket_at(3) == 0);
        CHILD_CHECK(listening_socket_at(4) == 0);
        pass_fds(2);
        CHILD_CHECK(address_parse("unix:/nonexistent/dir/test.sock", &a) == 0);
        CHILD_CHECK(new_daemon(&a, &d) == 0);
        CHILD_CHECK(daemon_listen(d, take_fd, &t) == -ENOMEM);
        CHILD_CHECK(t.n == 0);
        /* fd 3 went to take_fd, which closed it; fd 4 must not leak. */
        CHILD_CHECK(!fd_open(3));
        CHILD_CHECK(!fd_open(4));
        address_done(&a);
        return 0;
}

static int refuses_non_socket(void) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        Address a;
        Taken t = { .fail_at = -1 };
        int p[2];

        CHILD_CHECK(listening_socket_at(3) == 0);
        CHILD_CHECK(pipe(p) == 0 && dup2(p[0], 4) == 4);
        pass_fds(2);
        CHILD_CHECK(address_parse("unix:/nonexistent/dir/test.sock", &a) == 0);
        CHILD_CHECK(new_daemon(&a, &d) == 0);
        CHILD_CHECK(daemon_listen(d, take_fd, &t) == -EINVAL);
        CHILD_CHECK(t.n == 0);
        CHILD_CHECK(!fd_open(3));
        CHILD_CHECK(!fd_open(4));
        address_done(&a);
        return 0;
}

/* TCP carries no identity: neither an address nor a passed socket of it is served. */
static int refuses_tcp(void) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        Address a;
        Taken t = { .fail_at = -1 };
        int fd;

        unsetenv("LISTEN_FDS");
        CHILD_CHECK(address_parse("tcp:127.0.0.1:0", &a) == 0);
        CHILD_CHECK(new_daemon(&a, &d) == 0);
        CHILD_CHECK(daemon_listen(d, take_fd, &t) == -EPFNOSUPPORT);
        CHILD_CHECK(!d->bound && t.n == 0);
        d = daemon_free(d);
        address_done(&a);

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHILD_CHECK(fd >= 0 && bind(fd, (const struct sockaddr *) &sin, sizeof(sin)) == 0 && listen(fd, 1) == 0);
        CHILD_CHECK(dup2(fd, 3) == 3);
        pass_fds(1);
        CHILD_CHECK(address_parse("unix:/nonexistent/dir/test.sock", &a) == 0);
        CHILD_CHECK(new_daemon(&a, &d) == 0);
        CHILD_CHECK(daemon_listen(d, take_fd, &t) == -EPFNOSUPPORT);
        CHILD_CHECK(t.n == 0);
        CHILD_CHECK(!fd_open(3));
        address_done(&a);
        return 0;
}

static int bind_failure(void) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        Address a;
        Taken t = { .fail_at = -1 };

        unsetenv("LISTEN_FDS");
        CHILD_CHECK(address_parse("unix:/proc/nonexistent/test.sock", &a) == 0);
        CHILD_CHECK(new_daemon(&a, &d) == 0);
        CHILD_CHECK(daemon_listen(d, take_fd, &t) < 0);
        CHILD_CHECK(!d->bound);
        CHILD_CHECK(t.n == 0);
        address_done(&a);
        return 0;
}

static int fits_connections(void) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        struct rlimit rl = { .rlim_cur = 300, .rlim_max = 300 };
        Address a;

        /* Raised from 100 to the hard limit, 300, before the fit. */
        CHILD_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
        rl.rlim_cur = 100;
        CHILD_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
        CHILD_CHECK(address_parse("unix:/nonexistent/dir/test.sock", &a) == 0);
        CHILD_CHECK(daemon_new(&(const DaemonOptions) {
                                       .ident = "test",
                                       .address = &a,
                                       .bus_name = "org.mrkv.Test",
                                       .limits = &(const VarlinkServerLimits) { .max_connections = 4096 },
                               },
                               &d) == 0);
        CHILD_CHECK(d->limits.max_connections == 300 - NOFILE_RESERVE);
        d = daemon_free(d);
        CHILD_CHECK(new_daemon(&a, &d) == 0);
        CHILD_CHECK(d->limits.max_connections == 300 - NOFILE_RESERVE);
        address_done(&a);
        return 0;
}

START_TEST(test_binds_address) {
        ck_assert_int_eq(tests_in_child(binds_address), 0);
}
END_TEST

START_TEST(test_takes_passed) {
        ck_assert_int_eq(tests_in_child(takes_passed), 0);
}
END_TEST

START_TEST(test_closes_rest_on_failure) {
        ck_assert_int_eq(tests_in_child(closes_rest_on_failure), 0);
}
END_TEST

START_TEST(test_refuses_non_socket) {
        ck_assert_int_eq(tests_in_child(refuses_non_socket), 0);
}
END_TEST

START_TEST(test_refuses_tcp) {
        ck_assert_int_eq(tests_in_child(refuses_tcp), 0);
}
END_TEST

START_TEST(test_bind_failure) {
        ck_assert_int_eq(tests_in_child(bind_failure), 0);
}
END_TEST

START_TEST(test_fits_connections) {
        struct rlimit rl;

        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        /* Valgrind keeps the hard limit for itself: a program under it cannot lower it. */
        if (rl.rlim_max < 300 || getenv("MRKV_TEST_VALGRIND"))
                return;
        ck_assert_int_eq(tests_in_child(fits_connections), 0);
}
END_TEST

START_TEST(test_parse_address) {
        Address a = {};

        ck_assert_int_eq(daemon_parse_address("unix:/run/x.sock", "MRKV_TEST_ADDRESS", "y.sock", &a), 0);
        ck_assert_str_eq(a.string, "unix:/run/x.sock");
        address_done(&a);
        ck_assert_int_eq(daemon_parse_address("relative.sock", "MRKV_TEST_ADDRESS", "y.sock", &a), -EINVAL);

        /* Without an argument: the environment's, then one in the runtime directory. */
        ck_assert_int_eq(setenv("MRKV_TEST_ADDRESS", "tcp:127.0.0.1:7", 1), 0);
        ck_assert_int_eq(daemon_parse_address(NULL, "MRKV_TEST_ADDRESS", "y.sock", &a), 0);
        ck_assert_str_eq(a.string, "tcp:127.0.0.1:7");
        address_done(&a);
        ck_assert_int_eq(setenv("MRKV_TEST_ADDRESS", "nonsense", 1), 0);
        ck_assert_int_eq(daemon_parse_address(NULL, "MRKV_TEST_ADDRESS", "y.sock", &a), -EINVAL);
        ck_assert_int_eq(unsetenv("MRKV_TEST_ADDRESS"), 0);
        ck_assert_int_eq(setenv("RUNTIME_DIRECTORY", "/run/z", 1), 0);
        ck_assert_int_eq(daemon_parse_address(NULL, "MRKV_TEST_ADDRESS", "y.sock", &a), 0);
        ck_assert_str_eq(a.string, "unix:/run/z/y.sock");
        address_done(&a);
        ck_assert_int_eq(unsetenv("RUNTIME_DIRECTORY"), 0);
}
END_TEST

static Suite *daemon_setup_suite(void) {
        Suite *s = suite_create("daemon-setup");
        TCase *tc = tcase_create("listen");

        tcase_add_test(tc, test_parse_address);
        tcase_add_test(tc, test_binds_address);
        tcase_add_test(tc, test_takes_passed);
        tcase_add_test(tc, test_closes_rest_on_failure);
        tcase_add_test(tc, test_refuses_non_socket);
        tcase_add_test(tc, test_refuses_tcp);
        tcase_add_test(tc, test_bind_failure);
        tcase_add_test(tc, test_fits_connections);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        int r;

        if (!mkdtemp(dir))
                return EXIT_FAILURE;
        r = tests_run(daemon_setup_suite(), CK_FORK_GETENV);
        (void) rmdir(dir);
        return r;
}
