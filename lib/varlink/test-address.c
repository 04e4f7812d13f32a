/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Addresses (address.c): parsing unix: and tcp: addresses, listening and connecting,
 * and the default address of a service. */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "address.h"
#include "macro.h"
#include "tests.h"
#include "time-util.h"

/* A deadline for every wait; no test asserts how long anything takes. */
#define CALL_TIMEOUT (10U * USEC_PER_SEC)

#define TMPDIR_TEMPLATE "/tmp/mrkv-test-address-XXXXXX"
static char tmpdir[] = TMPDIR_TEMPLATE;

/* The directory lives in the parent process (unchecked fixtures), so it is removed even
 * when a test dies. */
static void make_tmpdir(void) {
        memcpy(tmpdir, TMPDIR_TEMPLATE, sizeof(tmpdir));
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void remove_tmpdir(void) {
        (void) nftw(tmpdir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void expect_address(const char *s, int family, int port) {
        Address a;

        ck_assert_msg(address_parse(s, &a) == 0, "rejected %s", s);
        ck_assert_int_eq(a.family, family);
        ck_assert_str_eq(a.string, s);
        if (family == AF_INET)
                ck_assert_int_eq(ntohs(((struct sockaddr_in *) &a.sa)->sin_port), port);
        else if (family == AF_INET6)
                ck_assert_int_eq(ntohs(((struct sockaddr_in6 *) &a.sa)->sin6_port), port);
        address_done(&a);
        ck_assert_ptr_null(a.string);
}

static void expect_address_rejected(const char *s) {
        Address a;
        int r = address_parse(s, &a);

        ck_assert_msg(r < 0, "accepted %s", s);
}

START_TEST(test_address_parse) {
        Address a;
        char longpath[200];

        expect_address("unix:/run/mrkv/kv.sock", AF_UNIX, 0);
        ck_assert_int_eq(address_parse("unix:/run/mrkv/kv.sock", &a), 0);
        ck_assert_str_eq(((struct sockaddr_un *) &a.sa)->sun_path, "/run/mrkv/kv.sock");
        ck_assert_uint_eq(a.sa_len,
                          offsetof(struct sockaddr_un, sun_path) + strlen("/run/mrkv/kv.sock") + 1);
        address_done(&a);
        expect_address("/abs/path.sock", AF_UNIX, 0); /* a bare absolute path is unix: */

        expect_address("tcp:127.0.0.1:0", AF_INET, 0);
        expect_address("tcp:127.0.0.1:8080", AF_INET, 8080);
        expect_address("tcp:127.0.0.1:65535", AF_INET, 65535);
        expect_address("tcp:[::1]:80", AF_INET6, 80);

        /* Relative paths would depend on each process's working directory. */
        ck_assert_int_eq(address_parse("unix:relative/path", &a), -EINVAL);
        ck_assert_int_eq(address_parse("unix:", &a), -EINVAL);
        ck_assert_int_eq(address_parse("relative.sock", &a), -EINVAL);
        memset(longpath, 'x', sizeof(longpath));
        memcpy(longpath, "unix:/", 6);
        longpath[sizeof(longpath) - 1] = '\0';
        ck_assert_int_eq(address_parse(longpath, &a), -ENAMETOOLONG);

        ck_assert_int_eq(address_parse("tcp:localhost", &a), -EINVAL); /* no port */
        ck_assert_int_eq(address_parse("tcp:127.0.0.1", &a), -EINVAL);
        ck_assert_int_eq(address_parse("tcp:127.0.0.1:", &a), -EINVAL);
        ck_assert_int_eq(address_parse("tcp:127.0.0.1:65536", &a), -EINVAL);
        /* 2^32 + 80: must not wrap around to port 80. */
        ck_assert_int_eq(address_parse("tcp:127.0.0.1:4294967376", &a), -EINVAL);
        ck_assert_int_eq(address_parse("tcp:127.0.0.1:99999999999999999999", &a), -EINVAL);
        ck_assert_int_eq(address_parse("tcp:127.0.0.1:-1", &a), -EINVAL);
        ck_assert_int_eq(address_parse("tcp:127.0.0.1:+80", &a), -EINVAL);
        ck_assert_int_eq(address_parse("tcp:127.0.0.1:8o", &a), -EINVAL);
        ck_assert_int_eq(address_parse("tcp:[::1]80", &a), -EINVAL);
        ck_assert_int_eq(address_parse("tcp:[::1", &a), -EINVAL);
        ck_assert_int_eq(address_parse("tcp:", &a), -EINVAL);
        expect_address_rejected("garbage");
        expect_address_rejected("");
        expect_address_rejected("http://127.0.0.1:80");
        expect_address_rejected("udp:127.0.0.1:80");
}
END_TEST

START_TEST(test_address_listen_connect) {
        _cleanup_close_ int lfd = -EBADF, cfd = -EBADF, afd = -EBADF;
        char path[PATH_MAX], address[PATH_MAX + 8];
        struct stat st;
        Address a;

        /* Missing directories are created, and a stale socket file is replaced. */
        snprintf(path, sizeof(path), "%s/sub/dir/%d.sock", tmpdir, (int) getpid());
        snprintf(address, sizeof(address), "unix:%s", path);
        ck_assert_int_eq(address_parse(address, &a), 0);
        lfd = address_listen(&a);
        ck_assert_int_ge(lfd, 0);
        closep(&lfd);
        ck_assert_int_eq(lstat(path, &st), 0);
        lfd = address_listen(&a);
        ck_assert_int_ge(lfd, 0);

        cfd = address_connect(&a, true);
        ck_assert_int_ge(cfd, 0);
        ck_assert(fcntl(cfd, F_GETFL) & O_NONBLOCK);
        ck_assert_int_eq(poll(&(struct pollfd) { .fd = lfd, .events = POLLIN }, 1,
                              (int) (CALL_TIMEOUT / USEC_PER_MSEC)),
                         1);
        afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(afd, 0);

        address_unlink(&a);
        ck_assert_int_eq(lstat(path, &st), -1);
        address_done(&a);

        /* Anything but a socket in the way is left alone. */
        snprintf(path, sizeof(path), "%s/regular-%d", tmpdir, (int) getpid());
        snprintf(address, sizeof(address), "unix:%s", path);
        closep(&afd);
        afd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ck_assert_int_ge(afd, 0);
        ck_assert_int_eq(address_parse(address, &a), 0);
        ck_assert_int_eq(address_listen(&a), -EEXIST);
        address_done(&a);

        /* TCP on an ephemeral loopback port. */
        ck_assert_int_eq(address_parse("tcp:127.0.0.1:0", &a), 0);
        closep(&lfd);
        lfd = address_listen(&a);
        ck_assert_int_ge(lfd, 0);
        address_done(&a);
}
END_TEST

START_TEST(test_address_default) {
        _cleanup_free_ char *s1 = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL;

        ck_assert_int_eq(setenv("MRKV_TEST_ADDR", "tcp:127.0.0.1:1", 1), 0);
        ck_assert_int_eq(address_default("MRKV_TEST_ADDR", "x.sock", &s1), 0);
        ck_assert_str_eq(s1, "tcp:127.0.0.1:1");

        ck_assert_int_eq(unsetenv("MRKV_TEST_ADDR"), 0);
        ck_assert_int_eq(setenv("RUNTIME_DIRECTORY", "/run/a:/run/b", 1), 0);
        ck_assert_int_eq(address_default("MRKV_TEST_ADDR", "x.sock", &s2), 0);
        ck_assert_str_eq(s2, "unix:/run/a/x.sock");

        ck_assert_int_eq(unsetenv("RUNTIME_DIRECTORY"), 0);
        ck_assert_int_eq(setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1), 0);
        ck_assert_int_eq(address_default(NULL, "x.sock", &s3), 0);
        ck_assert_str_eq(s3, "unix:/run/user/1000/mrkv/x.sock");

        ck_assert_int_eq(unsetenv("XDG_RUNTIME_DIR"), 0);
        ck_assert_int_eq(address_default(NULL, "x.sock", &s4), 0);
        ck_assert_str_eq(s4, "unix:/run/mrkv/x.sock");
}
END_TEST

static Suite *address_suite(void) {
        Suite *s = suite_create("address");
        TCase *tc = tcase_create("address");

        tcase_add_unchecked_fixture(tc, make_tmpdir, remove_tmpdir);
        tcase_add_test(tc, test_address_parse);
        tcase_add_test(tc, test_address_listen_connect);
        tcase_add_test(tc, test_address_default);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tests_run(address_suite(), CK_FORK_GETENV);
}
