/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mini-init: the /init of a small initramfs for the qemu tests (lib-vm.sh,
 * vm_mini_initramfs), built statically on the host. It loads the modules listed in
 * /modules (one path a line, dependencies first), waits for the root device, mounts
 * it and executes its init, as Debian's initrd would, without unpacking 30 MB and
 * running udev first: under TCG that is about 10 s less per boot.
 *
 * Kernel command line: root= (default /dev/vda), rootfstype= (default ext4), init=
 * (default /sbin/init). Any failure ends PID 1, i.e. a kernel panic: with panic=-1
 * and qemu's -no-reboot the VM exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ROOT_WAIT_MS 120000

static char cmdline[4096];

/* The value of NAME= on the kernel command line (the last one, as the kernel
 * reads it), or DEF. */
static char *cmdline_get(const char *name, const char *def) {
        const char *value = NULL;
        size_t n = strlen(name), value_len = 0;

        for (const char *p = cmdline; *p;) {
                size_t len = strcspn(p, " \n");

                if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
                        value = p + n + 1;
                        value_len = len - n - 1;
                }
                p += len;
                p += strspn(p, " \n");
        }
        return value ? strndup(value, value_len) : strdup(def);
}

static int read_cmdline(void) {
        ssize_t n;
        int fd;

        if (mount("proc", "/proc", "proc", 0, NULL) < 0)
                return -errno;
        fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, cmdline, sizeof cmdline - 1);
        close(fd);
        if (n < 0)
                return -errno;
        cmdline[n] = '\0';
        return umount("/proc") < 0 ? -errno : 0;
}

static int load_modules(const char *list) {
        char line[512];
        FILE *f;

        f = fopen(list, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f)) {
                int fd, r = 0;

                line[strcspn(line, "\n")] = '\0';
                if (!line[0])
                        continue;
                fd = open(line, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || syscall(SYS_finit_module, fd, "", 0) < 0)
                        r = -errno;
                if (fd >= 0)
                        close(fd);
                /* A CPU without the instructions of an optimised module (crc32c-intel
                 * under some TCG CPUs) refuses it; the generic one serves instead. */
                if (r < 0 && r != -EEXIST)
                        fprintf(stderr, "mini-init: %s: %s\n", line, strerror(-r));
        }
        fclose(f);
        return 0;
}

static void wait_for(const char *path) {
        for (int ms = 0; ms < ROOT_WAIT_MS && access(path, F_OK) < 0; ms += 10)
                nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
}

int main(void) {
        char *root, *fstype, *init;
        int r;

        (void) mkdir("/dev", 0755);
        (void) mkdir("/proc", 0755);
        (void) mkdir("/newroot", 0755);
        if (mount("devtmpfs", "/dev", "devtmpfs", 0, "mode=0755") < 0 && errno != EBUSY) {
                perror("mini-init: mount /dev");
                return 1;
        }
        r = read_cmdline();
        if (r < 0) {
                fprintf(stderr, "mini-init: /proc/cmdline: %s\n", strerror(-r));
                return 1;
        }
        r = load_modules("/modules");
        if (r < 0) {
                fprintf(stderr, "mini-init: /modules: %s\n", strerror(-r));
                return 1;
        }

        root = cmdline_get("root", "/dev/vda");
        fstype = cmdline_get("rootfstype", "ext4");
        init = cmdline_get("init", "/sbin/init");
        if (!root || !fstype || !init) {
                fputs("mini-init: out of memory\n", stderr);
                return 1;
        }
        wait_for(root);
        if (mount(root, "/newroot", fstype, 0, NULL) < 0) {
                fprintf(stderr, "mini-init: mount %s (%s): %m\n", root, fstype);
                return 1;
        }
        if (mount("/dev", "/newroot/dev", NULL, MS_MOVE, NULL) < 0 || chdir("/newroot") < 0 ||
                        mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0) {
                perror("mini-init: switching to the root file system");
                return 1;
        }
        execv(init, (char *[]){ init, NULL });
        fprintf(stderr, "mini-init: exec %s: %m\n", init);
        return 1;
}
